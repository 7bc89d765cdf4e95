package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/shmring/shmring/internal/units"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	pol, err := ipc.ParsePolicy(*wait)
	if err != nil || pol == ipc.Drop || pol == ipc.DropOldest || pol == ipc.Overflow {
		return usagef("--wait %q: want hybrid, spin, yield, park, block or backoff", *wait)
	}
	r, err := ipc.Open(pos[0], loc.options()...)
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer(ipc.WithWait(pol))
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
	emit := func(m []byte) {
		out.Write(m)
		out.WriteByte('\n')
		got++
	}
	for *limit == 0 || got < *limit {
		max := 256
		if *limit > 0 {
			max = int(min(uint64(max), *limit-got))
		}
		n, err := c.TryReadBatch(max, emit)
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
		n, err = c.ReadBatch(wctx, 1, emit)
		cancel()
		switch {
		case err == nil:
			if n > 0 {
				lastMessage = time.Now()
			}
		case errors.Is(err, ipc.ErrPeerDead):
			// No producer right now: keep waiting for one to come.
		case errors.Is(err, ipc.ErrTimeout) && *limit > 0:
			if err := out.Flush(); err != nil {
				return err
			}
			return exitError{exitStopped, fmt.Sprintf("got %d of %d messages: none arrived for %v", got, *limit, timeout.Value)}
		case errors.Is(err, ipc.ErrTimeout), errors.Is(err, context.Canceled):
			return nil
		default:
			return err
		}
	}
	return nil
}
