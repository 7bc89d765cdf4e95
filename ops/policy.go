package ops

import (
	"fmt"
	"math"

	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
)

// Policy is a wait policy as the segment stores it in its override words:
// what every producer does when a message does not fit, or how the
// consumer waits for data, whatever each was configured with (ringctl
// policy). The numbers are part of the layout and never change; 0 is no
// override.
type Policy uint8

// The policies an override can name. Each maps onto ipc's configuration:
// the waits are ipc.Wait's strategies, the rest ipc.ProducerConfig's
// full-ring actions.
const (
	// Spin busy-waits, yielding the processor every 256 pauses
	// (ipc.Spin).
	Spin Policy = 1
	// Drop returns ipc.ErrFull at once and counts the drop (producers
	// only; ipc.Drop).
	Drop Policy = 2
	// Backoff spins briefly, then yields, then sleeps from 20 µs doubling
	// to 1 ms; no futex, so a sleeper is not woken early. Only as an
	// override: ipc's own configuration has no such wait.
	Backoff Policy = 3
	// Yield gives the processor up between attempts (ipc.Yield).
	Yield Policy = 4
	// Park sleeps on the segment's futex until the other side wakes it
	// (ipc.Park).
	Park Policy = 5
	// Block is Park; the deadline is the waiting caller's context. Kept
	// because segments and scripts name it.
	Block Policy = 6
	// Hybrid spins, then yields, then parks (ipc.Hybrid, the default).
	Hybrid Policy = 7
	// Overflow hands a message that does not fit to the producer's
	// overflow route (ipc.ProducerConfig.Overflow); a producer without one
	// gets ipc.ErrFull (producers only).
	Overflow Policy = 8
	// DropOldest reclaims the oldest messages to make room (ipc.DropOldest;
	// producers only, rings created with ipc.Config.DropOldest).
	DropOldest Policy = 9
)

// policyNames is every policy, in the order ParsePolicy's error lists them.
var policyNames = [...]string{Spin: "spin", Drop: "drop", Backoff: "backoff", Yield: "yield", Park: "park",
	Block: "block", Hybrid: "hybrid", Overflow: "overflow", DropOldest: "drop-oldest"}

// nameList is policyNames for an error: "spin, drop, ... or drop-oldest".
const nameList = "spin, drop, backoff, yield, park, block, hybrid, overflow or drop-oldest"

// String returns the policy's name as ParsePolicy reads it and ringctl
// policy prints it ("spin", "drop-oldest"), or "Policy(N)" for a number
// that is no policy (0 included: no override).
func (p Policy) String() string {
	if p.known() {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy returns the policy called s (see String). Any other name
// returns an error matching ErrInvalidPolicy that lists every name.
func ParsePolicy(s string) (Policy, error) {
	for p, n := range policyNames {
		if n != "" && n == s {
			return Policy(p), nil
		}
	}
	return 0, fmt.Errorf("ops: unknown policy %q (want %s): %w", s, nameList, ErrInvalidPolicy)
}

// known reports whether p is a policy.
func (p Policy) known() bool { return p >= Spin && p <= DropOldest }

// waits reports whether p is a way to wait (a consumer may follow it).
func (p Policy) waits() bool {
	return p.known() && p != Drop && p != Overflow && p != DropOldest
}

// SetPolicy overrides, in the segment, the policy of every producer and of
// the consumer of r, in whatever process they run; they follow it from
// their next wait (parked ones are woken to see it). 0 removes an
// override, so each goes back to its own configuration. ipc.Stats shows
// the overrides (ProducerOverride, ConsumerOverride).
//
// The consumer's policy must wait (not Drop, Overflow or DropOldest), and
// DropOldest needs a ring created with ipc.Config.DropOldest: otherwise,
// or for a number that is no policy, it returns ErrInvalidPolicy and
// changes nothing. A ring opened read-only returns ErrReadOnly.
func SetPolicy(r *ipc.Ring, producers, consumer Policy) error {
	h, err := enter("set policy", r)
	if err != nil {
		return err
	}
	defer h.Leave()
	if err := writable("set policy", h); err != nil {
		return err
	}
	if err := policyFits(h, producers, consumer); err != nil {
		return fmt.Errorf("ops: set policy of %q: %w", h.Seg.Path(), err)
	}
	return h.Inspect(func() error {
		pm, cm := h.R.OverrideWords()
		pm.Store(uint32(producers))
		cm.Store(uint32(consumer))
		for _, wp := range []ring.WaitLine{h.R.ProducerWaitLine(), h.R.ConsumerWaitLine()} {
			wp.Seq.Add(1)
			_, _ = futex.Wake(wp.Seq, math.MaxInt32)
		}
		return nil
	})
}

// waitNames lists the policies a consumer may follow, for an error.
const waitNames = "spin, backoff, yield, park, block or hybrid"

// policyFits checks SetPolicy's arguments against the sides they are for
// and h's ring, saying which side is wrong and what would do.
func policyFits(h *handle.Ring, producers, consumer Policy) error {
	switch {
	case producers != 0 && !producers.known():
		return fmt.Errorf("the producers' policy %v is no policy (want 0 for none, or %s): %w", producers, nameList, ErrInvalidPolicy)
	case producers == DropOldest && !h.R.Overwrite():
		return fmt.Errorf("the producers' policy drop-oldest needs a ring created with DropOldest (ipc.Config.DropOldest, ringctl create --drop-oldest): %w", ErrInvalidPolicy)
	case consumer != 0 && !consumer.known():
		return fmt.Errorf("the consumer's policy %v is no policy (want 0 for none, or %s): %w", consumer, waitNames, ErrInvalidPolicy)
	case consumer != 0 && !consumer.waits():
		return fmt.Errorf("the consumer's policy %v does not apply to a consumer, which only waits (want 0 for none, or %s): %w", consumer, waitNames, ErrInvalidPolicy)
	}
	return nil
}
