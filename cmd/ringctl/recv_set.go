package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/shm"
	"github.com/shmring/shmring/waitset"
)

// recvSet is recv --set: the rings named (or matched) by list, consumed
// as one wait set, each message a line, prefixed with its ring's name if
// withName. The set's counters go to stderr on exit, and every every (if
// not 0) while it runs.
func recvSet(sio stdio, loc location, list string, w ipc.Wait, limit uint64, timeout units.DurationFlag, withName bool, every time.Duration) error {
	names, err := setNames(loc, list)
	if err != nil {
		return err
	}
	s, err := waitset.New(&waitset.Config{Wait: w})
	if err != nil {
		return err
	}
	var rings []*ipc.Ring
	defer func() { // the set first: it releases the consumer roles
		_ = s.Close()
		for _, r := range rings {
			_ = r.Close()
		}
	}()
	label := map[*waitset.Member]string{}
	defer func() { printSetStats(sio.err, s, label) }() // before the set's Close (deferred above)
	for _, name := range names {
		r, err := ipc.Open(name, loc.options()...)
		if err != nil {
			return err
		}
		rings = append(rings, r)
		m, err := s.Join(r)
		if err != nil {
			return err
		}
		label[m] = name
	}

	// Ctrl-C or SIGTERM ends the wait cleanly, releasing the consumer roles.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := bufio.NewWriterSize(sio.out, 64<<10)
	defer out.Flush()
	var got uint64
	lastMessage := time.Now()
	nextStats := lastMessage.Add(every)
	emit := func(m *waitset.Member, msg []byte) {
		if withName {
			out.WriteString(label[m])
			out.WriteString(": ")
		}
		out.Write(msg)
		out.WriteByte('\n')
		got++
	}
	for limit == 0 || got < limit {
		max := 256
		if limit > 0 {
			max = int(min(uint64(max), limit-got))
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		var deadline time.Time
		if timeout.Given {
			deadline = lastMessage.Add(timeout.Value)
		}
		statsDue := every > 0 && (deadline.IsZero() || nextStats.Before(deadline))
		if statsDue {
			deadline = nextStats
		}
		if !deadline.IsZero() {
			wctx, cancel = context.WithDeadline(ctx, deadline)
		}
		n, err := s.Read(wctx, max, emit)
		cancel()
		if n > 0 {
			lastMessage = time.Now()
		}
		if statsDue && !time.Now().Before(nextStats) {
			if ferr := out.Flush(); ferr != nil {
				return ferr
			}
			printSetStats(sio.err, s, label)
			nextStats = time.Now().Add(every)
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				continue // the Read's deadline was the counters' (--timeout's is later)
			}
		}
		if ferr := out.Flush(); ferr != nil {
			return ferr
		}
		var me *waitset.MemberError
		switch {
		case err == nil:
		case errors.Is(err, ipc.ErrPeerDead):
			// A ring with no producer right now: keep waiting for one.
		case errors.As(err, &me):
			// The set dropped a damaged ring: say so, go on with the rest.
			fmt.Fprintf(sio.err, "ringctl recv: %s: %v; going on with the other rings\n", label[me.Member], cliWording(err.Error()))
			if len(s.Members()) == 0 {
				return fmt.Errorf("no ring of the set is left: %w", err)
			}
		case errors.Is(err, context.DeadlineExceeded) && limit > 0:
			return exitError{exitStopped, fmt.Sprintf("got %d of %d messages: none arrived for %v", got, limit, timeout.Value)}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			return nil
		default:
			return err
		}
	}
	return nil
}

// printSetStats prints the set's counters: a line per member (its name as
// given), then the set's.
func printSetStats(w io.Writer, s *waitset.Set, label map[*waitset.Member]string) {
	st := s.Stats() // the set's counters; the members' below, with their names
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tMESSAGES\tBYTES\tTURNS\tBUDGET-SPENT\tWAKEUPS\tPEER-DEAD")
	for _, m := range s.Members() {
		ms := m.Stats()
		name := label[m]
		if name == "" {
			name = ms.Name
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", show(name), ms.Messages, ms.Bytes, ms.Turns, ms.Exhausted, ms.Wakeups, ms.PeerDead)
	}
	tw.Flush()
	fmt.Fprintf(w, "set: sleeps %d, wakeups %d, spurious %d, timeouts %d, peer-dead reports %d, dropped %d, doorbell ids restored %d, missed wake-ups %d\n",
		st.Sleeps, st.Wakeups, st.Spurious, st.Timeouts, st.PeerDead, st.Dropped, st.DoorbellRestores, st.MissedWakeups)
}

// setNames expands --set's list: each comma-separated element is a ring
// name (or path), or a glob matched against the rings of the directory
// (--dir, $SHMRING_DIR or /dev/shm; a glob with a slash is a path glob).
// Every glob must match, and no ring may come twice.
func setNames(loc location, list string) ([]string, error) {
	dir, _ := dirAndTrust(loc.dir, loc.trust)
	var names []string
	seen := map[string]bool{}
	for _, el := range strings.Split(list, ",") {
		el = strings.TrimSpace(el)
		if el == "" {
			return nil, usagef("--set %q: an empty name; separate names with single commas", list)
		}
		matches := []string{el}
		if strings.ContainsAny(el, "*?[") {
			pattern := el
			if !strings.Contains(el, "/") {
				pattern = filepath.Join(dir, el)
			}
			found, err := filepath.Glob(pattern)
			if err != nil {
				return nil, usagef("--set: bad glob %q: %v", el, err)
			}
			matches = matches[:0]
			for _, f := range found {
				if strings.HasPrefix(filepath.Base(f), ".") {
					continue // a ring being created, or not a ring
				}
				if _, ok := shm.DoorbellID(filepath.Base(f)); ok {
					continue // a wait set's doorbell, not a ring
				}
				if !strings.Contains(el, "/") {
					f = filepath.Base(f)
				}
				matches = append(matches, f)
			}
			if len(matches) == 0 {
				return nil, fmt.Errorf("--set: no ring matches %q in %s; list them with `ringctl ls`", el, dir)
			}
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				names = append(names, m)
			}
		}
	}
	return names, nil
}
