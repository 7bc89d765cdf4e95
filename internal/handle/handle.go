// Package handle is how package ops reaches the internals of an open
// ipc.Ring without ipc exporting them: ipc sets [Of] in an init function
// (ipc/handle.go), and ops calls it. Nothing else uses it.
//
// It cannot name ipc's types (ipc imports it), so [Of] takes the ring as
// an any and [Ring.Slot] returns an ipc.SlotStats as an any: each is the
// one type ipc and ops agree on, asserted where it is used.
package handle

import (
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
