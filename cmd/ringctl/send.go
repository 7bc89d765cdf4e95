package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/shmring/shmring/ipc"
)

func runSend(sio stdio, args []string) error {
	fs := newFlags(sio, "send")
	var loc location
	loc.register(fs)
	policy := fs.String("policy", "spin", "when the ring is full: drop (count it and go on), spin or backoff (wait)")
	id := fs.Int("id", -1, "mpsc: producer slot to write as (default: the first free one)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	pol, err := ipc.ParsePolicy(*policy)
	if err != nil {
		return usagef("--policy %q: want drop, spin or backoff", *policy)
	}
	r, err := ipc.Open(pos[0], loc.options()...)
	if err != nil {
		return err
	}
	defer r.Close()
	popts := []ipc.ProducerOption{ipc.WithPolicy(pol)}
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
		switch werr := p.Write(msg); {
		case werr == nil:
			sent++
		case errors.Is(werr, ipc.ErrFull):
			dropped++
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
			sent, dropped+tooLarge, dropped, tooLarge, formatSize(r.MaxMessage()))
		return errSilentFailure
	}
	return nil
}
