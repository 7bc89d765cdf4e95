// Waiting words: the futex lines and wait-mode words whose protocol
// package ipc runs.

package ring

import (
	"sync/atomic"
)

// WaitPoint is one side's waiting words: the consumer's (waiting for data)
// or the producers' (waiting for room). Package ipc runs the protocol; this
// package only places the words.
type WaitPoint struct {
	// Seq is the futex word: a waker bumps it, then wakes.
	Seq *atomic.Uint32
	// Parked is non-zero while a waiter may be asleep (or about to be).
	Parked *atomic.Uint32
	// Parks counts the times a waiter went to sleep.
	Parks *atomic.Uint64
	// Wakeups counts the wake system calls made.
	Wakeups *atomic.Uint64
}

func (r *Ring) waitPoint(line uint64) WaitPoint {
	return WaitPoint{
		Seq:     word32(r.region, line+waitSeq),
		Parked:  word32(r.region, line+waitParked),
		Parks:   word(r.region, line+waitParks),
		Wakeups: word(r.region, line+waitWakeups),
	}
}

// ConsumerWait returns the words the consumer sleeps on when the ring is empty.
func (r *Ring) ConsumerWait() WaitPoint { return r.waitPoint(offConsWait) }

// ProducerWait returns the words producers sleep on when the ring is full.
func (r *Ring) ProducerWait() WaitPoint { return r.waitPoint(offProdWait) }

// Modes returns the control words that override the producers' and the
// consumer's wait mode (0: as each was configured).
func (r *Ring) Modes() (producers, consumer *atomic.Uint32) {
	return word32(r.region, offProdMode), word32(r.region, offConsMode)
}
