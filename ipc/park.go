// Parking: one sleep of the waiting protocol (docs/layout.md, "Lines 5
// and 6"), and the waker's half.

package ipc

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/spin"
	"github.com/shmring/shmring/ring"
)

// park is one sleep of the waiting protocol. The waiter reads the futex
// word, announces itself (a sequentially consistent store of parked), makes
// every other process's recent stores visible and its later loads see the
// announcement (membarrier), re-tries, and only then sleeps on the word. A
// waker publishes its progress with a plain store, loads parked, and if set
// clears it, bumps the word and wakes. Either the waiter's re-try sees the
// progress, or the waker sees the announcement: no wake-up is lost, and
// the waker's fast path needs no fence and no system call.
//
// The first park of a wait (first) puts the barrier off: it re-tries, then
// re-tries for a short bounded while more (firstSpin, about 0.4 µs), and
// sleeps at most firstSleep without it; only if that sleep runs out unwoken
// does it re-try once more and, if that fails, go on with the barrier as
// above. A wake-up that the barrier would have caught (a publisher whose
// store of progress was still in its store buffer when it loaded parked and
// our re-try loaded its position) is seen by the spin in practice (the
// store leaves the buffer within it), and otherwise late by at most
// firstSleep, never lost; and a wait that is woken within firstSleep, a
// round trip's, makes no membarrier call (an inter-processor interrupt to
// every core running a registered process: the 1.3x of a park round trip
// over a raw futex, docs/benchmarks.md).
func (s *waitSide) park(ctx context.Context, deadline time.Time, try func() (bool, error), first bool) (bool, error) {
	if testBeforeSeqLoad != nil {
		testBeforeSeqLoad(s.wp.Seq)
	}
	seq := s.wp.Seq.Load()
	if s.shut() {
		// Checked after loading the word: Ring.Close stores the flag
		// before it bumps the word, so a close that this check misses
		// makes the sleep below return at once.
		return false, errShut
	}
	if err := s.ctxErr(ctx); err != nil {
		// The same for a cancellation: the context is done before its
		// AfterFunc bumps the word, so a cancellation whose bump this
		// load already saw is seen here, and one that comes later bumps
		// a word that no longer holds seq. Without this check a waiter
		// that loaded the bumped word would sleep a whole slice.
		return false, err
	}
	if testSkipRecheck || testSkipFirstRecheck {
		time.Sleep(100 * time.Microsecond) // widen the window the re-check closes
	}
	s.wp.Parked.Store(1)
	if first && !testNoFirstSleep {
		// The re-tries before the barrier. A test's testSkipFirstRecheck
		// makes every one of them see nothing (as if the publisher's
		// store stayed in its store buffer until the barrier), the spin
		// included: the barrier's re-try must then find it.
		pre := try
		if testSkipRecheck || testSkipFirstRecheck {
			pre = blind
		}
		if done, err := pre(); done || err != nil {
			return done, err
		}
		if done, err := firstSpin(pre); done || err != nil {
			return done, err
		}
		slice, _, ok := s.slice(firstSleep, deadline)
		if !ok {
			return false, nil
		}
		s.wp.Parks.Add(1)
		if err := s.firstWait(seq, slice); err != futex.ErrTimeout {
			if err != nil {
				return false, fmt.Errorf("ipc: futex wait: %w", err)
			}
			return false, nil // woken, or the word moved: the caller re-tries
		}
		firstSleepsRanOut.Add(1)
		// Ran out unwoken. A re-try first: what it finds is a raced
		// wake-up (the publisher loaded parked before our announcement
		// was visible, our re-tries loaded its position before its store
		// was), late by the first sleep, or a publisher that has not got
		// to its wake yet; the barrier is then not needed.
		if done, err := pre(); done || err != nil {
			if done {
				firstSleepsLate.Add(1)
			}
			return done, err
		}
		// On with the barrier. seq is still the word we announced
		// against: a wake since has bumped it, and the sleep below
		// returns at once.
	}
	exact := futex.Barrier()
	if !testSkipRecheck {
		if done, err := try(); done || err != nil {
			return done, err
		}
	}
	slice, capped, ok := s.slice(parkSlice, deadline)
	if !ok {
		return false, nil
	}
	if !exact {
		slice = min(slice, parkSliceFallback) // no membarrier: bound a missed wake-up instead
	}
	exact = exact && !capped
	s.wp.Parks.Add(1)
	err := futex.Wait(s.wp.Seq, seq, slice)
	if err == futex.ErrTimeout {
		// Slept the whole slice: if the condition already holds, a wake-up
		// was missed. That must never happen; count it so tests can tell.
		if done, err := try(); done || err != nil {
			if exact && done {
				lateWakes.Add(1)
			}
			return done, err
		}
		// Nothing came for a whole slice: the idle path, where a
		// consumer looks for damage it would not see otherwise (a
		// truncated file, its own position word overwritten).
		if s.idle != nil {
			if err := s.idle(); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ipc: futex wait: %w", err)
	}
	return false, nil
}

// blind is a re-try that sees nothing (testSkipFirstRecheck).
func blind() (bool, error) { return false, nil }

// firstSpin re-tries for a short bounded while (firstSpins pauses, a
// re-try after each) before the first sleep of a wait, which goes without
// the barrier. A publisher's store of progress that was still in its store
// buffer when our re-try loaded its position (and its load of parked was
// satisfied before our announcement was visible: the race the barrier
// closes) leaves the buffer within that in practice, and the re-try sees
// it: the wait ends without the sleep, which that publisher would not have
// ended (it saw no one parked), running out its whole firstSleep. Nothing
// depends on it: a store that takes longer is found by the barrier's
// re-try when the first sleep runs out, as without the spin.
func firstSpin(try func() (bool, error)) (bool, error) {
	if testNoFirstSpin {
		return false, nil
	}
	for range firstSpins {
		spin.Pause()
		if done, err := try(); done || err != nil {
			firstSpinFound.Add(1)
			return done, err
		}
	}
	return false, nil
}

// slice bounds a sleep of at most d by the caller's deadline and the side's
// slice cap; capped reports that the cap shortened it (a sleep that may run
// out with its condition holding: not a missed wake-up), ok false that the
// deadline has passed. A test's testParkSlice replaces the park slice (d
// above firstSleep), longer or shorter, and bounds the first sleep.
func (s *waitSide) slice(d time.Duration, deadline time.Time) (slice time.Duration, capped, ok bool) {
	slice = d
	if testParkSlice > 0 {
		if d > firstSleep {
			slice = testParkSlice
		} else {
			slice = min(slice, testParkSlice)
		}
	}
	if !deadline.IsZero() {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, false, false
		}
		slice = min(slice, left)
	}
	if s.sliceCap != nil {
		if c := s.sliceCap(); c > 0 && c < slice {
			slice, capped = c, true
		}
	}
	return slice, capped, true
}

// Test hooks (export_test.go): lateWakes counts sleeps that ran out although
// their condition held (a missed wake-up); testSkipRecheck breaks the
// protocol (and widens the window it leaves open) so a test can show it
// would catch that; testParkSlice shortens
// sleeps so a broken protocol shows as late wakes rather than slowness.
var (
	lateWakes       atomic.Uint64
	testSkipRecheck bool
	testParkSlice   time.Duration
	// testBeforeSeqLoad, if set, runs as a sleep begins, before the
	// futex word is loaded (tests that cancel a context at that point).
	testBeforeSeqLoad func(seq *atomic.Uint32)
	// testBeforeContextWake, if set, runs in a context's wake before it
	// touches the segment (tests that delay it past the wait's return).
	testBeforeContextWake func()
	// firstSleepsRanOut counts first sleeps that ran out unwoken (park);
	// testNoFirstSleep makes every park take the barrier at once, as
	// before the first sleep existed.
	firstSleepsRanOut atomic.Uint64
	testNoFirstSleep  bool
	// firstSleepsLate counts the first sleeps that ran out with their
	// condition true (a raced wake-up, or a publisher that had not got to
	// its wake yet), each late by the first sleep.
	firstSleepsLate atomic.Uint64
	// testSkipFirstRecheck makes every re-try before the barrier see
	// nothing (the one after the announcement, the spin's, the one after
	// a first sleep ran out), as if every publisher's store were still in
	// its store buffer then (the race the barrier closes): only the
	// barrier's re-try finds it.
	testSkipFirstRecheck bool
	// firstSpinFound counts waits that firstSpin ended (its re-try found
	// the condition true); testNoFirstSpin turns the spin off.
	firstSpinFound  atomic.Uint64
	testNoFirstSpin bool
)

// wake is the waker's half of the protocol, called after progress was
// published: one load on the fast path; when a waiter announced itself, one
// wake for however many messages were published since.
func wake(wp ring.WaitLine) {
	if wp.Parked.Load() == 0 || !wp.Parked.CompareAndSwap(1, 0) {
		return
	}
	wp.Seq.Add(1)
	_, _ = futex.Wake(wp.Seq, math.MaxInt32)
	wp.Wakeups.Add(1)
}
