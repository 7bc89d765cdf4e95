package ipc

import (
	"context"
	"fmt"
	"time"

	"github.com/shmring/shmring/internal/spin"
)

// Policy says what a producer does when a message does not fit, and how a
// consumer waits for data.
type Policy uint8

const (
	// Spin busy-waits with a CPU pause instruction, yielding the processor
	// to other processes every spinsPerYield pauses so that a peer sharing
	// the core still runs. Lowest latency, one core per waiter.
	Spin Policy = iota + 1
	// Drop returns ErrFull at once and counts the message in the ring's
	// drops counter (producers only).
	Drop
	// Backoff spins briefly, then yields, then sleeps with exponential
	// backoff up to maxSleep: near-zero CPU when idle at the cost of up to
	// maxSleep of added latency after a quiet spell. The consumer default.
	Backoff
)

func (p Policy) String() string {
	switch p {
	case Spin:
		return "spin"
	case Drop:
		return "drop"
	case Backoff:
		return "backoff"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy returns the policy called s ("spin", "drop", "backoff").
func ParsePolicy(s string) (Policy, error) {
	for _, p := range []Policy{Spin, Drop, Backoff} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("ipc: unknown policy %q (want spin, drop or backoff)", s)
}

const (
	spinsPerYield = 256
	backoffSpins  = 1024
	backoffYields = 64
	minSleep      = 20 * time.Microsecond
	maxSleep      = time.Millisecond
)

// waiter runs one wait of a policy: call next until the condition holds. It
// lives on the caller's stack; no allocation.
type waiter struct {
	policy Policy
	n      uint64 // iterations so far
	sleep  time.Duration
}

// next waits one step. It returns the context's error, if done, checking it
// only every few iterations of a spin so the fast path stays a pause.
func (w *waiter) next(ctx context.Context) error {
	w.n++
	switch w.policy {
	case Spin:
		if w.n%spinsPerYield == 0 {
			spin.Yield()
			return ctxErr(ctx)
		}
		spin.Pause()
		return nil
	default: // Backoff
		switch {
		case w.n < backoffSpins:
			spin.Pause()
			if w.n%spinsPerYield == 0 {
				return ctxErr(ctx)
			}
			return nil
		case w.n < backoffSpins+backoffYields:
			spin.Yield()
		default:
			if w.sleep == 0 {
				w.sleep = minSleep
			}
			if ctx.Done() != nil {
				t := time.NewTimer(w.sleep)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctxErr(ctx)
				case <-t.C:
				}
			} else {
				time.Sleep(w.sleep)
			}
			w.sleep = min(2*w.sleep, maxSleep)
		}
		return ctxErr(ctx)
	}
}

// ctxErr returns ErrTimeout (wrapping the context's error) when the
// context's deadline passed, the context's error when it was cancelled.
func ctxErr(ctx context.Context) error {
	select {
	case <-ctx.Done():
		if err := ctx.Err(); err == context.DeadlineExceeded {
			return fmt.Errorf("ipc: %w: %w", ErrTimeout, err)
		} else {
			return err
		}
	default:
		return nil
	}
}
