package waitset

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/spin"
	"github.com/shmring/shmring/ipc"
)

const (
	// parkSlice bounds one sleep, as a single ring's (ipc's parkSlice):
	// the set re-checks its members' producers at least this often.
	parkSlice = 100 * time.Millisecond
	// pollSlice bounds a sleep that cannot be woken by every member: no
	// membarrier, or no futex_waitv. It is the bound on a missed wake-up
	// then.
	pollSlice = time.Millisecond
	// maxMembersAsleep is how many members one futex_waitv watches: its
	// 128 words, less the set's own. A helper goroutine sleeps on each
	// further chunk of as many (chunk.go).
	maxMembersAsleep = futex.MaxWaitV - 1
)

// wait runs the set's Wait until a pass delivers, ctx ends, the set closes
// or a member is reported. Every member's parked flag it set is cleared
// when it returns, unless a producer's wake-up cleared it first.
func (s *Set) wait(ctx context.Context, max int) (n int, err error) {
	var stopWake func() bool
	defer func() {
		if stopWake != nil {
			stopWake()
		}
		s.unannounce()
	}()
	deadline, _ := ctx.Deadline()
	for i := 1; ; i++ {
		if s.isClosed.Load() {
			return 0, errClosed
		}
		if s.ops.Load() != 0 {
			s.mu.Lock()
			s.apply()
			s.mu.Unlock()
		}
		check := false
		switch s.phase(i) {
		case ipc.Spin:
			spin.Pause()
			check = i%64 == 0
		case ipc.Yield:
			spin.Yield()
			check = i%4 == 0
		default:
			if stopWake == nil && ctx.Done() != nil {
				// Cancellation must reach a sleeper: poke it.
				stopWake = context.AfterFunc(ctx, s.poke)
			}
			if n, err = s.park(ctx, deadline, max); n > 0 || err != nil {
				return n, err
			}
			// park made its pass (or has the loop's checks to make).
			if err := s.checks(ctx); err != nil {
				return 0, err
			}
			continue
		}
		if check {
			if err := s.checks(ctx); err != nil {
				return 0, err
			}
		}
		if n, err = s.pass(max); n > 0 || err != nil {
			return n, err
		}
	}
}

// checks ends a wait whose context is done, or to report a member.
func (s *Set) checks(ctx context.Context) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	return s.checkPeers(time.Now())
}

// phase is what the i-th step of a wait does.
func (s *Set) phase(i int) ipc.Strategy {
	if s.strategy != ipc.Hybrid {
		return s.strategy
	}
	switch {
	case i <= s.spins:
		return ipc.Spin
	case i <= s.spins+s.yields:
		return ipc.Yield
	}
	return ipc.Park
}

// park is one sleep on every member at once; the protocol is a single
// ring's (docs/layout.md, "Lines 5 and 6"), run over each member's line 5:
// load the futex word, announce (parked = 1), then one membarrier for all,
// re-check every member, sleep on all the words with one futex_waitv. A
// producer of any member either published before the barrier (the re-check
// sees it) or sees parked = 1 afterwards and wakes that member's word.
//
// Each member is registered as waiting on its ring (BeginWait) before its
// words are touched and until the sleep ends, so that its ring's Close
// wakes the sleep and waits for it before it unmaps the segment.
func (s *Set) park(ctx context.Context, deadline time.Time, max int) (int, error) {
	cseq := s.ctrl.Load()
	if s.isClosed.Load() {
		return 0, errClosed // checked after the load: Close stores, then pokes
	}
	if s.ops.Load() != 0 {
		return 0, nil // apply them first (the caller does)
	}
	if err := ctxErr(ctx); err != nil {
		return 0, err // the same for a cancellation's poke
	}
	waitv := futex.WaitVAvailable() && !testNoWaitV
	s.vec.Reset()
	s.vec.Add(&s.ctrl, cseq)
	s.parked, s.parkedAt = s.parked[:0], s.parkedAt[:0]
	s.onBell, s.onBellAt = s.onBell[:0], s.onBellAt[:0]
	s.inUse = 0
	if testSkipRecheck {
		time.Sleep(100 * time.Microsecond) // widen the window the re-check closes
	}
	if waitv {
		s.bellsFor(cseq)
	}
	for i, m := range s.members {
		if !waitv {
			break
		}
		if !m.h.BeginWait() {
			continue // its ring is closing: the re-check reports it
		}
		if b := m.bell; b != nil && b.epoch == s.epoch {
			// Its producers ring the doorbell, whose word was loaded
			// above (bellsFor) before any flag is stored. (Every
			// doorbell fits in the vector: bellFor makes at most
			// maxBells, and members beyond them stay on their own
			// words with line 15 at 0.)
			s.onBell, s.onBellAt = append(s.onBell, m), append(s.onBellAt, i)
		} else {
			// Beyond futex_waitv's 127 words, a helper sleeps on the
			// rest (chunk.go).
			vec := s.chunkFor(len(s.parked), cseq)
			s.parked, s.parkedAt = append(s.parked, m), append(s.parkedAt, i)
			m.seq = m.h.Line.Seq.Load()
			vec.Add(m.h.Line.Seq, m.seq) // before the flag's load below
		}
		if !m.announced || m.h.Line.Parked.Load() == 0 {
			m.h.Line.Parked.Store(1)
			m.announced = true
			s.fenced = false
		}
	}
	defer s.endWaits()
	// The barrier orders each flag's store before the re-check's loads. A
	// flag found still set (above) was stored before an earlier barrier of
	// this wait, and has been set since: only the set sets it, and a
	// producer that clears it bumps the word afterwards, which the value
	// loaded before the flag's load catches. A producer whose load of the
	// flag came after that barrier sees it set and wakes us; one whose
	// load came before it had its publish made visible by it, so the
	// re-check below sees the message. So when no flag was stored since
	// the last barrier of this wait, the barrier is skipped: a sleep that
	// ran out, or ended with nothing to do, is followed by none.
	exact := true
	if !s.fenced {
		exact = futex.Barrier()
		s.fenced = exact && waitv
		if exact {
			s.barriers.Add(1)
		}
	}
	if !testSkipRecheck {
		if n, err := s.pass(max); n > 0 || err != nil {
			return n, err
		}
	}
	slice := parkSlice
	if testParkSlice > 0 {
		slice = testParkSlice
	}
	if !exact || !waitv {
		slice, exact = pollSlice, false
	}
	cut := false // the slice ends at the context's deadline
	if !deadline.IsZero() {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, nil
		}
		cut = left < slice
		slice = min(slice, left)
	}
	for _, ms := range [2][]*Member{s.parked, s.onBell} {
		for _, m := range ms {
			// A member stopped at an uncommitted reservation must be
			// read again in time for its owner's liveness check.
			if c := m.h.RecoverIn(); c > 0 && c < slice {
				slice, exact, cut = c, false, false
			}
			m.h.Line.Parks.Add(1)
		}
	}
	s.parks.Add(1)
	var idx int
	var err error
	if waitv {
		s.woken.Store(-1)
		s.sleepChunks(slice)
		idx, err = s.vec.Wait(slice)
		if cerr := s.wakeChunks(cseq); err == nil || err == futex.ErrTimeout {
			if cerr != nil {
				err = cerr
			} else if idx <= 0 {
				if w := s.woken.Load(); w >= 0 {
					idx, err = int(w)+1+len(s.slept), nil // a helper's member
				}
			}
		}
	} else {
		idx, err = -1, futex.Wait(&s.ctrl, cseq, slice)
	}
	if err == futex.ErrTimeout {
		// Slept the whole slice: if a member had a message all along, a
		// wake-up was missed. That must never happen; count it so tests
		// can tell, and find the member whose wake-up went astray. A
		// sleep that the context's deadline ended is no timeout (a
		// Read bounded by a deadline, such as ringctl's --stats ticks).
		if !cut {
			s.timeouts.Add(1)
		}
		if exact {
			for _, ms := range [2][]*Member{s.parked, s.onBell} {
				for _, m := range ms {
					m.before = m.messages.Load()
				}
			}
		}
		// Damage an idle member's reads would never meet (its file
		// truncated, its consumer position written by another process)
		// becomes its consumer's sticky error: the pass below drops it.
		for _, ms := range [2][]*Member{s.parked, s.onBell} {
			for _, m := range ms {
				m.checkIdle()
			}
		}
		n, err := s.pass(max)
		if exact && n > 0 {
			lateWakes.Add(1)
			s.missed()
		}
		return n, err
	}
	if err != nil {
		return 0, fmt.Errorf("waitset: futex_waitv on %d words: %w", s.vec.Len(), err)
	}
	if idx > 0 && idx <= len(s.slept) {
		// Woken by a doorbell: a producer that rang it cleared its
		// member's line-5 flag (the set set them all), so the first
		// member found with its flag clear rang (or another producer of
		// it cleared its flag to ring): its turn comes first, as for a
		// member's own word. The flags are lines the set stored to, in
		// its cache but the ringer's: a load each, no turn on an empty
		// ring. The scan starts where the round robin stands (the first
		// member at or after s.next) and wraps: the member a producer
		// rang is most often the next in turn, found in a load or two
		// rather than up to 64, and no member is favoured for its index.
		s.wakeups.Add(1)
		s.bellWakeups.Add(1)
		k := len(s.onBell)
		j0, _ := slices.BinarySearch(s.onBellAt, s.next)
		for d := range k {
			j := j0 + d
			if j >= k {
				j -= k
			}
			if m := s.onBell[j]; m.h.Line.Parked.Load() == 0 {
				m.wakeups.Add(1)
				if i := s.onBellAt[j]; i < len(s.members) && s.members[i] == m {
					s.next, s.used = i, 0
				}
				break
			}
		}
	} else if idx > len(s.slept) && idx-len(s.slept) <= len(s.parked) {
		// Woken by a member: its turn comes first. Every member was
		// empty at the re-check, so none is owed a turn before it; the
		// others that filled meanwhile follow in this pass.
		idx -= len(s.slept)
		m := s.parked[idx-1]
		m.wakeups.Add(1)
		s.wakeups.Add(1)
		if i := s.parkedAt[idx-1]; i < len(s.members) && s.members[i] == m {
			s.next, s.used = i, 0
		}
	}
	if s.isClosed.Load() || s.ops.Load() != 0 {
		return 0, nil // the caller handles them first
	}
	// Deliver before the registrations end (endWaits, deferred): the
	// latency of a wake-up is that of this pass.
	n, err := s.pass(max)
	if n == 0 && err == nil && ctxErr(ctx) == nil {
		s.spurious.Add(1) // nothing to deliver, nothing else to do
	}
	return n, err
}

// missed follows a sleep that ran its whole slice although the protocol
// was exact (a barrier, futex_waitv) and whose pass then delivered: a
// wake-up was missed. A member that delivered, whose line-5 flag a
// producer cleared (it took the wake-up) and whose word (its doorbell's,
// or its own line 5) did not move since the sleep loaded it, had its
// wake-up sent elsewhere: a producer rang the doorbell that a forged
// line-15 id names, which nobody sleeps on. Each such member counts a
// missed wake-up, and one on a doorbell is moved to its own word for good
// (demote stores 0 to its line 15), as for a doorbell failure: a missed
// wake-up never repeats silently. Inside park, with the members still
// registered as waiting.
func (s *Set) missed() {
	for _, ms := range [2][]*Member{s.parked, s.onBell} {
		for _, m := range ms {
			if m.messages.Load() == m.before || m.h.Line.Parked.Load() != 0 {
				continue
			}
			if b := m.bell; b != nil {
				if b.epoch != s.epoch || b.w.Seq.Load() != b.seq {
					continue // its doorbell was rung: late, not lost
				}
			} else if m.h.Line.Seq.Load() != m.seq && !m.h.Flagged {
				continue
			}
			m.misses.Add(1)
			s.misses.Add(1)
			if m.bell != nil {
				s.demote(m)
			}
		}
	}
}

// endWaits ends the registrations of the last sleep.
func (s *Set) endWaits() {
	for _, m := range s.parked {
		m.h.EndWait()
	}
	for _, m := range s.onBell {
		m.h.EndWait()
	}
	clear(s.parked)
	clear(s.onBell)
	s.parked, s.parkedAt = s.parked[:0], s.parkedAt[:0]
	s.onBell, s.onBellAt = s.onBell[:0], s.onBellAt[:0]
}

// bellsFor starts a sleep's vector with the doorbells of the members on
// one (step 1: each doorbell's word is loaded before any flag is stored),
// then announces the set on each (step 2, as for a member's flag: stored
// only if found clear or new to this wait). Each member's line 15 is
// checked first (checkID: a forged id is replaced by the set's own); a
// member whose line-15 failures moved since it went on its doorbell (a
// producer could not ring it and woke the member's line 5 instead) is moved
// to its own word.
func (s *Set) bellsFor(cseq uint32) {
	s.epoch++
	clear(s.slept)
	s.slept = s.slept[:0]
	for _, m := range s.members {
		if !s.checkID(m) {
			if m.bell != nil {
				s.demote(m)
			}
			continue
		}
		if b := m.bell; b.epoch != s.epoch && len(s.slept) < maxMembersAsleep-1 {
			b.epoch = s.epoch
			s.slept = append(s.slept, b)
			b.seq = b.w.Seq.Load()
			s.vec.Add(b.w.Seq, b.seq)
		}
	}
	for _, b := range s.slept {
		if !b.announced || b.w.Parked.Load() == 0 {
			b.w.Parked.Store(1)
			if !b.announced {
				s.rung = append(s.rung, b)
			}
			b.announced = true
			s.fenced = false
		}
	}
}

// unannounce clears, when a wait ends, each member's parked flag that the
// set set and no producer cleared: producers stop paying a wake-up for a
// set that is reading.
func (s *Set) unannounce() {
	s.fenced = false
	for _, b := range s.rung {
		if !b.closed && b.w.Parked.Load() != 0 {
			b.w.Parked.Store(0)
		}
		b.announced = false
	}
	clear(s.rung)
	s.rung = s.rung[:0]
	for _, m := range s.members {
		if !m.announced {
			continue
		}
		m.announced = false
		if m.h.Enter() != nil {
			continue
		}
		if m.h.Line.Parked.Load() != 0 {
			m.h.Line.Parked.Store(0)
		}
		m.h.Leave()
	}
}

// ctxErr returns errDeadline (no allocation) when ctx's deadline passed,
// ctx's error when it was cancelled, nil while it runs.
func ctxErr(ctx context.Context) error {
	select {
	case <-ctx.Done():
		if err := ctx.Err(); err == context.DeadlineExceeded {
			return errDeadline
		} else {
			return err
		}
	default:
		return nil
	}
}

// Test hooks (export_test.go): lateWakes counts sleeps that ran out although
// a member had a message (a missed wake-up); testSkipRecheck breaks the
// protocol so a test can show it would see that; testParkSlice sets the
// sleep's bound; testNoWaitV makes the set poll as on a kernel without
// futex_waitv.
var (
	lateWakes       atomic.Uint64
	testSkipRecheck bool
	testParkSlice   time.Duration
	testNoWaitV     bool
	// testNoBell makes New's sets keep every member on its own word.
	testNoBell bool
)
