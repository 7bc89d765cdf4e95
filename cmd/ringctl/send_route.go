package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/route"
)

// routeFlags are send's routing flags.
type routeFlags struct {
	rings    string
	by       string
	keyField int
	spill    bool
}

func (f *routeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.rings, "route", "", "route the lines over these rings (comma-separated NAMEs) instead of writing to one NAME; prints each ring's counters at the end")
	fs.StringVar(&f.by, "by", "least", "with --route: least (the ring with the fewest bytes waiting), rr (in turn, passing over pressured rings) or key (the ring the line's key hashes to: same key, same ring, in order)")
	fs.IntVar(&f.keyField, "key-field", 0, "with --by key: the line's Nth whitespace-separated field (from 1) is its key; 0: the whole line. A line with fewer fields is keyed by the whole line (counted on stderr at the end)")
	fs.BoolVar(&f.spill, "spill", false, "with --by key: a line whose ring is pressured, full or without a live consumer goes to the next healthy ring (order per key is then not kept)")
}

// single refuses the routing flags without --route.
func (f *routeFlags) single() error {
	if f.by != "least" || f.keyField != 0 || f.spill {
		return usagef("--by, --key-field and --spill route over several rings: give them with --route R1,R2,...")
	}
	return nil
}

// config turns the flags into a route.Config.
func (f *routeFlags) config() (route.Config, error) {
	var c route.Config
	switch f.by {
	case "least":
		c.By = route.LeastDepth
	case "rr":
		c.By = route.RoundRobin
	case "key":
		c.By, c.Spill = route.ByKey, f.spill
	default:
		return c, usagef("--by %q: want least, rr or key", f.by)
	}
	switch {
	case f.keyField < 0:
		return c, usagef("--key-field must be 0 (the whole line) or a field number from 1")
	case c.By != route.ByKey && (f.keyField != 0 || f.spill):
		return c, usagef("--key-field and --spill go with --by key")
	}
	return c, nil
}

// routeTimeout bounds a line's wait for a ring to take it, under a waiting
// policy, when --timeout is not given: as long as a producer waits for a
// missing consumer (the peer timeout), since a router waits while every
// ring is full or without a live consumer.
const routeTimeout = time.Second

// runSendRoute is send --route: each line goes to one of the rings, as the
// router's strategy picks it; at the end each ring's counters are printed.
func runSendRoute(sio stdio, loc location, rf routeFlags, pcfg ipc.ProducerConfig, waits bool, limit time.Duration, id int, perr error) error {
	cfg, err := rf.config()
	if err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	if pcfg.Full == ipc.DropOldest {
		return usagef("--policy drop-oldest does not route: a router never reclaims what it wrote; use drop or a waiting policy")
	}
	cfg.Full, cfg.Wait = pcfg.Full, pcfg.Wait
	if id >= 0 {
		cfg.ID = id + 1
	}
	if waits && limit == 0 {
		limit = routeTimeout
	}
	names := strings.Split(rf.rings, ",")
	var rings []*ipc.Ring
	defer func() {
		for _, r := range rings {
			r.Close()
		}
	}()
	for _, n := range names {
		if n == "" {
			return usagef("--route %q: an empty ring name", rf.rings)
		}
	}
	seen := map[string]string{} // path → the name that gave it
	for _, n := range names {
		r, err := ipc.Open(n, loc.options()...)
		if err != nil {
			return err
		}
		rings = append(rings, r)
		if first, ok := seen[r.Path()]; ok {
			if first == n {
				return usagef("--route %q names ring %s twice: name each ring once", rf.rings, show(n))
			}
			return usagef("--route %q names ring %s twice (as %s and %s): name each ring once", rf.rings, show(r.Path()), show(first), show(n))
		}
		seen[r.Path()] = n
	}
	rt, err := route.New(rings, &cfg)
	if err != nil {
		return err
	}
	defer rt.Close()

	var sent, dropped, tooLarge, shortKeys uint64
	var stopped error
	err = eachLine(sio.in, func(line []byte) bool {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if limit > 0 {
			ctx, cancel = context.WithTimeout(ctx, limit)
		}
		defer cancel()
		var werr error
		if cfg.By == route.ByKey {
			key, ok := lineKey(line, rf.keyField)
			if !ok {
				shortKeys++
			}
			werr = rt.SendKey(ctx, key, line)
		} else {
			werr = rt.Send(ctx, line)
		}
		switch {
		case werr == nil:
			sent++
		case errors.Is(werr, ipc.ErrTooLarge):
			tooLarge++
		case errors.Is(werr, ipc.ErrFull):
			dropped++
		case errors.Is(werr, context.DeadlineExceeded):
			stopped = fmt.Errorf("sent %d: no ring took a line for %v (every ring full or without a live consumer; see the counters above and `ringctl stat`); start consumers, wait longer with --timeout, or use --policy drop", sent, limit)
			return false
		default:
			stopped = fmt.Errorf("after %d lines: %w", sent, werr)
			return false
		}
		return true
	})
	printRouteStats(sio.out, names, rt.Stats())
	if shortKeys > 0 {
		fmt.Fprintf(sio.err, "ringctl send: %d line(s) had fewer than %d fields: each was keyed by the whole line\n", shortKeys, rf.keyField)
	}
	switch {
	case err != nil:
		return err
	case stopped != nil:
		return exitError{exitStopped, stopped.Error()}
	case dropped+tooLarge > 0:
		fmt.Fprintf(sio.err, "ringctl send: sent %d, dropped %d (%d: no ring in the rotation had room, %d larger than a ring's maximum)\n", sent, dropped+tooLarge, dropped, tooLarge)
		return exitError{code: exitDropped}
	}
	return nil
}

// lineKey is the line's key: its field-th whitespace-separated field (from
// 1), or the whole line for 0 or a line with fewer fields (then ok is
// false: send counts those and says so on stderr at the end).
func lineKey(line []byte, field int) (key []byte, ok bool) {
	if field == 0 {
		return line, true
	}
	rest := line
	for n := 1; ; n++ {
		rest = bytes.TrimLeft(rest, " \t\r\v\f")
		if len(rest) == 0 {
			return line, false
		}
		end := bytes.IndexAny(rest, " \t\r\v\f")
		if end < 0 {
			end = len(rest)
		}
		if n == field {
			return rest[:end], true
		}
		rest = rest[end:]
	}
}

// printRouteStats prints each ring's routing counters as a table.
func printRouteStats(w io.Writer, names []string, s route.Stats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tROUTED\tSPILLED\tSKIPPED\tHEALTH")
	for i, r := range s.Rings {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", show(names[i]), r.Routed, r.Spilled, r.Skipped, r.Health)
	}
	tw.Flush()
	fmt.Fprintf(w, "dropped %d\n", s.Dropped)
}

// eachLine calls fn with each line of in (without its newline; a last line
// without one too) until fn returns false. The line is valid until fn
// returns.
func eachLine(in io.Reader, fn func(line []byte) bool) error {
	br := bufio.NewReaderSize(in, 64<<10)
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read stdin: %w", err)
		}
		line := chunk
		if len(long) > 0 {
			long = append(long, chunk...)
			line = long
		}
		if len(line) > 0 || err == nil {
			if !fn(bytes.TrimSuffix(line, []byte{'\n'})) {
				return nil
			}
		}
		long = long[:0]
		if err != nil {
			return nil
		}
	}
}
