package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/shmring/shmring/internal/units"
	"io"

	"github.com/shmring/shmring/ipc"
)

func runSend(sio stdio, args []string) error {
	fs := newFlags(sio, "send")
	var loc location
	loc.register(fs)
	policy := fs.String("policy", "hybrid", "when the ring is full: drop (count it and go on), drop-oldest (rings created --drop-oldest), or wait: hybrid, spin, yield, park, block (up to --timeout), backoff")
	var timeout units.DurationFlag
	fs.Var(&timeout, "timeout", "give up on a message after DUR of waiting (block: default 1s; others: no limit)")
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
		return errSilentFailure
	}
	return nil
}
