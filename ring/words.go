// Words this package places for package ipc's waiting and full-ring
// policies: the futex lines (5 and 6), the override words (line 7) and the
// counters of waiting, drops, full events and overflow. The layout is this
// package's, so it owns their offsets; what they mean (how a side waits,
// what a producer does when the ring is full) is ipc's: nothing in this
// package reads them to decide anything, except that a drop-oldest
// reclaim counts its drops (AddDrops).

package ring

import (
	"sync/atomic"
)

// WaitLine is the words of one waiting line of the layout: line 5
// (offConsWait, the consumer waiting for data) or line 6 (offProdWait,
// producers waiting for room). Package ipc runs the protocol over them
// (docs/layout.md, "Lines 5 and 6"); this package only places the words.
type WaitLine struct {
	// Seq is the futex word: a waker bumps it, then wakes.
	Seq *atomic.Uint32
	// Parked is non-zero while a waiter may be asleep (or about to be).
	Parked *atomic.Uint32
	// Parks counts the times a waiter went to sleep.
	Parks *atomic.Uint64
	// Wakeups counts the wake system calls made.
	Wakeups *atomic.Uint64
}

func (r *Ring) waitLine(line uint64) WaitLine {
	return WaitLine{
		Seq:     word32(r.region, line+waitSeq),
		Parked:  word32(r.region, line+waitParked),
		Parks:   word(r.region, line+waitParks),
		Wakeups: word(r.region, line+waitWakeups),
	}
}

// ConsumerWaitLine returns line 5's words, which the consumer sleeps on when
// the ring is empty.
func (r *Ring) ConsumerWaitLine() WaitLine { return r.waitLine(offConsWait) }

// ProducerWaitLine returns line 6's words, which producers sleep on when the
// ring is full.
func (r *Ring) ProducerWaitLine() WaitLine { return r.waitLine(offProdWait) }

// OverrideWords returns line 7's two override words (offProdMode, offConsMode), the
// producers' and the consumer's: an operator stores in them a wait mode
// that overrides each side's configured one, 0 for none. The values are
// package ipc's; this package never reads them.
func (r *Ring) OverrideWords() (producers, consumer *atomic.Uint32) {
	return word32(r.region, offProdMode), word32(r.region, offConsMode)
}

// AddOverflowed adds n to the producer's overflow counter word (line 3, or
// its slot's): messages the caller handed to an overflow route.
func (p *Producer) AddOverflowed(n uint64) { publish(p.overflowed, p.overflowed.Load()+n) }

// AddFullEvent adds one to the producer's full-events counter word: a
// write that found the ring full (package ipc counts once per write call,
// however long it then waits).
func (p *Producer) AddFullEvent() { publish(p.fullEvents, p.fullEvents.Load()+1) }

// AddDrops adds n to the producer's drops counter word: messages dropped
// by the caller's policy, or reclaimed by a drop-oldest write.
func (p *Producer) AddDrops(n uint64) { publish(p.drops, p.drops.Load()+n) }

// AddWaitCounts adds to the producer's waiting counter words: n busy-wait
// iterations and y sched_yield calls.
func (p *Producer) AddWaitCounts(n, y uint64) { add2(p.spins, n, p.yields, y) }

// AddWaitCounts adds to the consumer's waiting counter words (line 4): n
// busy-wait iterations and y sched_yield calls while waiting for data.
func (c *Consumer) AddWaitCounts(n, y uint64) {
	add2(word(c.r.region, offConsSpins), n, word(c.r.region, offConsYields), y)
}
