package ipc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryOptions configures Retry: the first pause, the longest, and how many
// attempts in all (0: until the context ends).
type RetryOptions struct {
	Initial  time.Duration // default 50 µs
	Max      time.Duration // default 100 ms
	Attempts int
}

// Retry calls write until it succeeds, returns an error other than ErrFull,
// ErrTimeout or ErrPeerDead, the attempts run out, or ctx ends. Between
// attempts it sleeps for a random time up to an exponentially growing bound
// ("full jitter"), so that many producers backing off do not retry in step.
// It sits on top of the Drop and Block policies for callers that would
// rather wait in their own time than in the ring's; with a ring created
// WithSequences, pass the message's sequence (Producer.WriteSeq) so that a
// retry after an ambiguous failure is never delivered twice.
//
// A nil ctx or write returns ErrInvalid.
func Retry(ctx context.Context, b RetryOptions, write func() error) error {
	if ctx == nil {
		return errNilContext
	}
	if write == nil {
		return fmt.Errorf("ipc: retry: the write function is nil; pass the write to retry: %w", ErrInvalid)
	}
	if b.Initial <= 0 {
		b.Initial = 50 * time.Microsecond
	}
	if b.Max < b.Initial {
		b.Max = max(b.Initial, 100*time.Millisecond)
	}
	bound := b.Initial
	var t *time.Timer
	for attempt := 1; ; attempt++ {
		err := write()
		if err == nil || !retryable(err) {
			return err
		}
		if b.Attempts > 0 && attempt >= b.Attempts {
			return err
		}
		d := time.Duration(rand.Int64N(int64(bound)) + 1)
		if t == nil {
			t = time.NewTimer(d)
			defer t.Stop()
		} else {
			t.Reset(d)
		}
		select {
		case <-ctx.Done():
			return ctxErr(ctx)
		case <-t.C:
		}
		bound = min(2*bound, b.Max)
	}
}

func retryable(err error) bool {
	return errors.Is(err, ErrFull) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrPeerDead)
}
