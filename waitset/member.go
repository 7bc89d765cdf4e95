package waitset

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ipc"
)

// Member is one ring of a Set: the identity each message comes with, and
// its counters. Its methods are safe from any goroutine.
type Member struct {
	s    *Set
	r    *ipc.Ring
	c    *ipc.Consumer
	h    *handle.Consumer
	name string
	fn   func(msg []byte) // deliver, bound once: a turn allocates nothing

	// The reader's.
	bytes       uint64    // delivered in the running turn
	empty       bool      // its last turn found nothing
	announced   bool      // its parked flag may be set by the set
	absentSince time.Time // since when it is empty with no producer (zero: not so at the last check)
	reported    bool      // its absence was reported and no presence has been seen since
	produced    uint64    // the producer position word at its last check
	errPeer     *MemberError
	bell        *bell  // its doorbell (flag bit 4), nil: it sleeps on its own word; set under s.mu at Join, then the reader's
	fails       uint64 // line 15's failures when it went on the doorbell
	noBell      bool   // demoted: a producer could not ring the doorbell, or a wake-up went astray
	before      uint64 // messages, before the pass that follows a sleep that ran out
	seq         uint32 // its line-5 seq as the last sleep loaded it (on its own word)

	left     bool  // under s.mu: out of the set, consumer closed
	closeErr error // under s.mu: the consumer's Close's

	bellID atomic.Uint64 // its doorbell's id (Stats); 0: on its own word

	messages, byteCount, turns, exhausted, wakeups, reports atomic.Uint64
	restores, misses                                        atomic.Uint64
}

// MemberStats are a member's counters since it joined.
type MemberStats struct {
	Name     string // the member's Name
	Messages uint64 // messages delivered
	Bytes    uint64 // their payload bytes
	Turns    uint64 // turns of the round robin that delivered at least one
	// Exhausted counts the turns that delivered the member's whole
	// Config.Budget: the turn ended at the budget, not at an empty ring
	// (the ring may have had nothing more, or more that waited for its
	// next turn). Near Turns: a member as busy as its share, or busier.
	Exhausted uint64
	Wakeups   uint64 // sleeps of the set that this ring's futex word ended
	// PeerDead counts the times it was reported with no producer.
	PeerDead uint64
	// Doorbell is the id of the doorbell the set sleeps on for this
	// member (its ring has descriptor flag bit 4, ipc.Config.Doorbell, and
	// its producers ring the doorbell); 0: the set sleeps on the member's
	// own futex word (an unflagged or memfd ring, or one a producer could
	// not ring the doorbell of).
	Doorbell uint64
	// DoorbellWakes and DoorbellFailures are the ring's line-15 counters
	// (docs/layout.md, "Line 15: doorbell"), over every producer and every
	// set the ring was ever a member of: doorbell FUTEX_WAKEs made, and
	// doorbells a producer could not open or validate (it woke the ring's
	// own word instead). Zero for an unflagged ring.
	DoorbellWakes, DoorbellFailures uint64
	// DoorbellRestores counts the sleeps that found the ring's line-15 id
	// not what the set stored there (its doorbell's id, or 0 for a member
	// on its own word) and stored it again: a co-tenant that can write
	// the ring wrote it (docs/layout.md, "What a co-tenant can do").
	DoorbellRestores uint64
	// MissedWakeups counts the sleeps that ran their whole slice and then
	// found a message on this member whose wake-up a producer had taken
	// (its line-5 flag cleared) without waking the set: the wake-up went
	// to a doorbell the set does not sleep on (a forged line-15 id) or,
	// rarely, was still on its way when the slice ended. A member on a
	// doorbell is moved to its own word at the first (Doorbell becomes
	// 0), as for a failure: a missed wake-up does not repeat silently.
	MissedWakeups uint64
}

func newMember(s *Set, r *ipc.Ring, c *ipc.Consumer) *Member {
	// reported: a member is reported after a presence only; a ring that
	// never had a producer (attached, or seen by its writes) is not.
	m := &Member{s: s, r: r, c: c, h: handle.ConsumerOf(c), name: filepath.Base(r.Path()), reported: true}
	m.fn = m.deliver
	m.errPeer = &MemberError{Member: m, Err: fmt.Errorf("no producer for %v (Config.Wait.PeerTimeout) and nothing left to read: "+
		"start a producer, or Leave the ring; the set keeps it and reports it again after a producer comes and goes: %w", s.peerTimeout, ipc.ErrPeerDead)}
	return m
}

// Ring returns the member's ring.
func (m *Member) Ring() *ipc.Ring { return m.r }

// Name returns the last element of the ring's path: its name, for a ring
// in the default directory.
func (m *Member) Name() string { return m.name }

// Stats returns the member's counters. The ring's own (depth, parks,
// wake-ups, lost records) are its Ring's Stats.
func (m *Member) Stats() MemberStats {
	var wakes, fails uint64
	if m.h.Flagged && m.h.Enter() == nil {
		wakes, fails = m.h.Doorbell.Wakes.Load(), m.h.Doorbell.Failures.Load()
		m.h.Leave()
	}
	return MemberStats{
		Doorbell:         m.bellID.Load(),
		DoorbellWakes:    wakes,
		DoorbellFailures: fails,
		Name:             m.name,
		Exhausted:        m.exhausted.Load(),
		Messages:         m.messages.Load(),
		Bytes:            m.byteCount.Load(),
		Turns:            m.turns.Load(),
		Wakeups:          m.wakeups.Load(),
		PeerDead:         m.reports.Load(),
		DoorbellRestores: m.restores.Load(),
		MissedWakeups:    m.misses.Load(),
	}
}

// deliver hands one message to the running Read's callback.
func (m *Member) deliver(msg []byte) {
	m.bytes += uint64(len(msg))
	m.s.fn(m, msg)
}

// turn reads up to max messages from the member: its consumer's read,
// inside the ring's Enter, so that the ring's Close waits for it.
func (m *Member) turn(max int) (int, error) {
	if m.h.Closed.Load() {
		return 0, fmt.Errorf("the ring's consumer was closed: %w", ipc.ErrClosed)
	}
	if err := m.h.Enter(); err != nil {
		return 0, err
	}
	m.bytes = 0
	n, err := m.h.TryRead(max, m.fn)
	m.h.Leave()
	if n > 0 {
		m.messages.Add(uint64(n))
		m.byteCount.Add(m.bytes)
		m.turns.Add(1)
	}
	m.empty = n == 0
	return n, err
}

// checkIdle has the member's consumer look for damage while idle
// (handle.Consumer.CheckIdle), inside the ring's Enter; what it finds is
// the consumer's sticky error, which the member's next turn returns.
func (m *Member) checkIdle() {
	if m.h.Closed.Load() || m.h.Enter() != nil {
		return
	}
	_ = m.h.CheckIdle()
	m.h.Leave()
}

// MemberError is an error of one member, which Read returns after what it
// delivered: its producers have been gone for the peer timeout
// (ipc.ErrPeerDead: the member stays in the set, and is reported once per
// absence), or its ring was closed (ipc.ErrClosed) or found damaged
// (ipc.ErrCorrupt), in which cases the set has dropped it (Leave is then a
// no-op). errors.Is sees through it to Err.
type MemberError struct {
	Member *Member
	Err    error
}

// Error names the ring and says what happened.
func (e *MemberError) Error() string {
	return fmt.Sprintf("waitset: ring %q: %v", e.Member.r.Path(), e.Err)
}

// Unwrap returns Err.
func (e *MemberError) Unwrap() error { return e.Err }
