package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
)

func runRecv(sio stdio, args []string) error {
	fs := newFlags(sio, "recv")
	var loc location
	loc.register(fs)
	limit := fs.Uint64("n", 0, "stop after N messages (default: no limit); exit 3 if --timeout passes first")
	var timeout units.DurationFlag
	fs.Var(&timeout, "timeout", "stop once DUR passes with no message, e.g. 500ms, 2s (default: wait forever)")
	wait := fs.String("wait", "hybrid", "how to wait for messages: hybrid, spin, yield, park, block (park; --timeout bounds either) or backoff")
	set := fs.String("set", "", "consume several rings as one wait set: comma-separated names or globs (e.g. 'app-*'), round robin, instead of NAME")
	withName := fs.Bool("with-name", false, "prefix each line with its ring's name and \": \"")
	var stats units.DurationFlag
	fs.Var(&stats, "stats", "with --set: print the set's counters on stderr every DUR as well as on exit, e.g. 10s")
	pos, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	w, ok := recvWait(*wait)
	if !ok {
		return usagef("--wait %q: want hybrid, spin, yield, park, block or backoff", *wait)
	}
	if *set != "" {
		if len(pos) != 0 {
			return usagef("--set takes the rings: give no NAME (got %q)", pos)
		}
		if stats.Given && stats.Value <= 0 {
			return usagef("--stats %v: want a positive interval, e.g. 10s", stats.Value)
		}
		return recvSet(sio, loc, *set, w, *limit, timeout, *withName, stats.Value)
	}
	if err := checkPos(pos, 1); err != nil {
		return err
	}
	if stats.Given {
		return usagef("--stats is for --set (the set's counters); one ring's are `ringctl stat NAME`")
	}
	r, err := ipc.Open(pos[0], loc.options()...)
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: w})
	if err != nil {
		return err
	}
	defer c.Close()

	// Ctrl-C or SIGTERM ends the wait cleanly, releasing the consumer role.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := bufio.NewWriterSize(sio.out, 64<<10)
	defer out.Flush()
	var got uint64
	lastMessage := time.Now()
	prefix := ""
	if *withName {
		prefix = pos[0] + ": "
	}
	emit := func(m []byte) {
		out.WriteString(prefix)
		out.Write(m)
		out.WriteByte('\n')
		got++
	}
	for *limit == 0 || got < *limit {
		max := 256
		if *limit > 0 {
			max = int(min(uint64(max), *limit-got))
		}
		n, err := c.TryRead(max, emit)
		if err != nil {
			return err
		}
		if n > 0 {
			lastMessage = time.Now()
			continue
		}
		// Nothing pending: show what we have before waiting.
		if err := out.Flush(); err != nil {
			return err
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout.Given {
			wctx, cancel = context.WithDeadline(ctx, lastMessage.Add(timeout.Value))
		}
		n, err = c.Read(wctx, 1, emit)
		cancel()
		switch {
		case err == nil:
			if n > 0 {
				lastMessage = time.Now()
			}
		case errors.Is(err, ipc.ErrPeerDead):
			// No producer right now: keep waiting for one to come.
		case errors.Is(err, context.DeadlineExceeded) && *limit > 0:
			if err := out.Flush(); err != nil {
				return err
			}
			return exitError{exitStopped, fmt.Sprintf("got %d of %d messages: none arrived for %v", got, *limit, timeout.Value)}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			return nil
		default:
			return err
		}
	}
	return nil
}

// recvWait turns --wait into the consumer's Wait: block is park (its
// limit is --timeout, a context deadline, as before); backoff is
// backoffWait (see sendPolicy).
func recvWait(name string) (ipc.Wait, bool) {
	switch name {
	case "hybrid":
		return ipc.Wait{Strategy: ipc.Hybrid}, true
	case "spin":
		return ipc.Wait{Strategy: ipc.Spin}, true
	case "yield":
		return ipc.Wait{Strategy: ipc.Yield}, true
	case "park", "block":
		return ipc.Wait{Strategy: ipc.Park}, true
	case "backoff":
		return backoffWait, true
	}
	return ipc.Wait{}, false
}
