package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
)

func runSend(sio stdio, args []string) error {
	fs := newFlags(sio, "send")
	var loc location
	loc.register(fs)
	policy := fs.String("policy", "hybrid", "when the ring is full: drop (count it and go on), drop-oldest (rings created --drop-oldest), or wait: hybrid, spin, yield, park, block (up to --timeout), backoff")
	var timeout units.DurationFlag
	fs.Var(&timeout, "timeout", "under a waiting policy, stop (exit 3) once a message has waited DUR for room (block: default 1s; others: no limit, but they stop once no consumer has been attached for 1s)")
	id := fs.Int("id", -1, "mpsc: producer slot to write as (default: the first free one)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	pol, err := ipc.ParsePolicy(*policy)
	if err != nil {
		return usagef("--policy %q: want hybrid, spin, yield, park, block, backoff, drop or drop-oldest", *policy)
	}
	r, err := ipc.Open(pos[0], loc.options()...)
	if err != nil {
		return err
	}
	defer r.Close()
	popts := []ipc.ProducerOption{ipc.WithPolicy(pol)}
	if timeout.Given {
		if timeout.Value <= 0 {
			return usagef("--timeout must be positive")
		}
		popts = append(popts, ipc.WithTimeout(timeout.Value))
	}
	if *id >= 0 {
		popts = append(popts, ipc.WithProducerID(*id))
	}
	p, err := r.Producer(popts...)
	if err != nil {
		return err
	}
	defer p.Close()

	// Under a waiting policy the first timeout or dead peer ends the
	// command; drop and drop-oldest go on and count.
	waits := pol != ipc.Drop && pol != ipc.DropOldest
	in := bufio.NewReaderSize(sio.in, 64<<10)
	var line []byte
	var sent, dropped, tooLarge uint64
	var lastReason error
	for {
		chunk, err := in.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, chunk...) // a line longer than the buffer
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read stdin: %w", err)
		}
		if len(chunk) == 0 && len(line) == 0 && err != nil {
			break
		}
		msg := chunk
		if len(line) > 0 {
			line = append(line, chunk...)
			msg = line
		}
		msg = bytes.TrimSuffix(msg, []byte{'\n'})
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if timeout.Given {
			ctx, cancel = context.WithTimeout(ctx, timeout.Value)
		}
		werr := p.WriteContext(ctx, msg)
		cancel()
		switch {
		case werr == nil:
			sent++
		case waits && (errors.Is(werr, ipc.ErrTimeout) || errors.Is(werr, ipc.ErrPeerDead)):
			// A waiting policy gave up: nobody is making room, so the
			// next line would wait just as long. Stop and say why.
			rest, all := countRest(sio.in, in, err != nil)
			total := fmt.Sprint(sent + dropped + tooLarge + 1 + rest)
			if !all {
				total = "at least " + total
			}
			return exitError{exitStopped, sendStopped(r, pos[0], werr, sent, total, dropped, tooLarge, timeout)}
		case errors.Is(werr, ipc.ErrFull), errors.Is(werr, ipc.ErrTimeout), errors.Is(werr, ipc.ErrPeerDead):
			dropped++
			lastReason = werr
		case errors.Is(werr, ipc.ErrTooLarge):
			tooLarge++
		default:
			return fmt.Errorf("after %d messages: %w", sent, werr)
		}
		line = line[:0]
		if err != nil {
			break
		}
	}
	if dropped+tooLarge > 0 {
		fmt.Fprintf(sio.err, "ringctl send: sent %d, dropped %d (%d ring full, %d larger than the %s maximum)\n",
			sent, dropped+tooLarge, dropped, tooLarge, units.FormatSize(r.MaxMessage()))
		if lastReason != nil && !errors.Is(lastReason, ipc.ErrFull) {
			fmt.Fprintf(sio.err, "ringctl send: last drop: %v\n", lastReason)
		}
		return exitError{code: exitDropped}
	}
	return nil
}

// sendStopped explains why send stopped under a waiting policy: what was
// sent, how the wait ended, whether a consumer is there, and what to do.
func sendStopped(r *ipc.Ring, name string, werr error, sent uint64, total string, dropped, tooLarge uint64, timeout units.DurationFlag) string {
	msg := fmt.Sprintf("sent %d of %s", sent, total)
	if dropped > 0 {
		msg += fmt.Sprintf(" (%d dropped)", dropped)
	}
	if tooLarge > 0 {
		msg += fmt.Sprintf(" (%d larger than the %s maximum)", tooLarge, units.FormatSize(r.MaxMessage()))
	}
	attached, read := false, uint64(0)
	if st, err := r.Stats(); err == nil {
		attached, read = st.ConsumerAttached, st.MsgsOut
	}
	if errors.Is(werr, ipc.ErrTimeout) {
		d := time.Second // Block's default
		if timeout.Given {
			d = timeout.Value
		}
		msg += fmt.Sprintf(": the ring stayed full for %v and ", d)
	} else {
		msg += ": the ring is full and "
	}
	switch {
	case attached:
		return msg + fmt.Sprintf("its consumer is attached but did not make room; see `ringctl stat %s`, wait longer with --timeout, or use --policy drop", show(name))
	case read == 0:
		msg += "no consumer is attached (none since creation)"
	default:
		msg += fmt.Sprintf("no consumer is attached (consumers have read %d messages before)", read)
	}
	return msg + fmt.Sprintf("; start one with `ringctl recv %s`, or use --policy drop", show(name))
}

// countRest counts the lines left on stdin after send stopped, so that it
// can say "sent N of M". A pipe or terminal that stays open is not waited
// for beyond a moment: all is false then, and n is what was counted.
func countRest(stdin io.Reader, in *bufio.Reader, atEOF bool) (n uint64, all bool) {
	if atEOF {
		return 0, true
	}
	type result struct {
		n   uint64
		all bool
	}
	var counted uint64
	count := func() result {
		buf := make([]byte, 64<<10)
		partial := false
		for {
			k, err := in.Read(buf)
			for _, b := range buf[:k] {
				if b == '\n' {
					counted++
				}
			}
			if k > 0 {
				partial = buf[k-1] != '\n'
			}
			if err != nil {
				if partial {
					counted++
				}
				return result{counted, errors.Is(err, io.EOF)}
			}
		}
	}
	f, ok := stdin.(*os.File)
	if !ok {
		res := count()
		return res.n, res.all
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		res := count()
		return res.n, res.all
	}
	done := make(chan result, 1)
	go func() { done <- count() }()
	select {
	case res := <-done:
		return res.n, res.all
	case <-time.After(2 * time.Second):
		return 0, false
	}
}
