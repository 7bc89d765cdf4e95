// Package handle is how packages ops, route, bridge and waitset reach the
// internals of an open ipc.Ring or ipc.Consumer without ipc exporting them:
// ipc sets [Of] and [ConsumerOf] in an init function (ipc/handle.go); ops
// calls Of, route calls Of to add its routing counters to each ring's line
// 12 (route/flush.go), bridge to store its bridge block (lines 13 and 14),
// waitset calls ConsumerOf. Nothing else uses them.
//
// It cannot name ipc's types (ipc imports it), so [Of] takes the ring as
// an any and [Ring.Slot] returns an ipc.SlotStats as an any: each is the
// one type ipc and ops agree on, asserted where it is used.
package handle

import (
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// Ring is an open ipc.Ring's internals, as ops needs them. The functions
// are the ring's own methods: their contracts are ipc's (ipc/ring.go,
// ipc/fault.go).
type Ring struct {
	Seg *shm.Segment // the mapped segment
	R   *ring.Ring   // the ring over its body

	// Enter starts a use of the segment (it stays mapped until Leave), or
	// returns ErrClosed after the Ring's Close. Never nested in one
	// goroutine.
	Enter func() error
	// Leave ends what Enter started.
	Leave func()
	// Inspect runs f, which reads (or, for an operator's setting, writes)
	// the segment, with the file's size checked before and after and a
	// memory fault inside f turned into an error matching ErrCorrupt and
	// ErrFault. Inside Enter; it may be nested.
	Inspect func(f func() error) error

	// SlotAlive reports whether MPSC slot i's holder is alive (true when
	// it cannot tell: never declare a peer dead on doubt).
	SlotAlive func(i int) bool
	// SlotLocked reports whether a process holds MPSC slot i's lock.
	SlotLocked func(i int) (bool, error)
	// Slot returns slot i's words with its liveness, as an ipc.SlotStats;
	// run it under Inspect.
	Slot func(i int) (any, error)

	// Consumer takes the consumer role with a spinning wait (ErrBusy if a
	// live process holds it); done releases it. Inside Enter.
	Consumer func() (c *ring.Consumer, done func() error, err error)
}

// Of returns the internals of r, an *ipc.Ring (not nil). Set by ipc's init.
var Of func(r any) *Ring

// Consumer is an open ipc.Consumer's internals, as package waitset needs
// them to read and wait on many rings from one goroutine. The functions are
// the consumer's and its ring's own (ipc/consumer.go, read.go, ring.go):
// their contracts are ipc's.
type Consumer struct {
	// Line is the ring's line 5, which the consumer sleeps on (the waiting
	// protocol: docs/layout.md, "Lines 5 and 6").
	Line ring.WaitLine
	// Closed is the consumer's closed flag: set by its Close or its Ring's.
	Closed *atomic.Bool

	// TryRead is the consumer's non-blocking read: up to max messages to
	// fn, one position store, the MPSC recovery of a dead producer's
	// reservation, the producers woken if room was released. Unguarded:
	// the caller makes sure one goroutine at a time calls it, inside Enter,
	// with Closed false.
	TryRead func(max int, fn func(msg []byte)) (int, error)
	// RecoverIn bounds a sleep while the consumer is stopped at an
	// uncommitted MPSC reservation (0: it is not).
	RecoverIn func() time.Duration
	// ProducersAlive reports whether any producer is attached (lock
	// tests: system calls). Inside Enter.
	ProducersAlive func() bool
	// CheckIdle is the consumer's look for damage while idle (ipc's
	// checkIdle, at most one look per 50 ms): the segment file's size and
	// the consumer position word. Damage becomes the consumer's sticky
	// error, which its next TryRead returns. Inside Enter, after a sleep
	// that ran out with nothing to read.
	CheckIdle func() error
	// Produced loads the ring's producer position word (untrusted, only
	// compared with an earlier load: a change is a producer's write).
	// Inside Enter.
	Produced func() uint64

	// Enter and Leave are the ring's (Ring above): the segment stays
	// mapped between them, and Ring.Close waits for Leave.
	Enter func() error
	Leave func()
	// BeginWait registers a wait on the ring, so that the ring's Close
	// marks Closed, bumps and wakes Line and waits for EndWait before it
	// unmaps; false (not registered) if Closed is set already. Line's
	// words may be used between BeginWait and EndWait without Enter.
	BeginWait func() bool
	EndWait   func()
	// OnShut sets a function the consumer's shut (its Close, or its
	// Ring's Close) calls after it sets Closed: a wait set that sleeps on
	// a doorbell, not on Line, is woken by it. It must not block.
	OnShut func(f func())

	// Flagged reports the ring's descriptor flag bit 4 (doorbell): every
	// producer follows the doorbell rule, so the set may sleep on a
	// doorbell for it (docs/layout.md, "Line 15: doorbell").
	Flagged bool
	// Doorbell is the ring's line 15; the consumer-role holder stores ID.
	Doorbell ring.DoorbellLine
	// Dir is the directory of the ring's path as this process opened it
	// ("" for a memfd: no doorbell).
	Dir string
}

// ConsumerOf returns the internals of c, an *ipc.Consumer (not nil). Set by
// ipc's init.
var ConsumerOf func(c any) *Consumer
