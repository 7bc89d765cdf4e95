package ipc

import (
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/ring"
)

// LateWakes returns the number of sleeps that ran out although their
// condition held: missed wake-ups.
func LateWakes() uint64 { return lateWakes.Load() }

// BreakParkProtocol makes a parking waiter skip its re-check after it
// announces itself (the ordering that prevents lost wake-ups), and sets the
// sleep slice; Restore undoes it. Tests only, not concurrently with others.
func BreakParkProtocol(skipRecheck bool, slice time.Duration) (restore func()) {
	testSkipRecheck, testParkSlice = skipRecheck, slice
	return func() { testSkipRecheck, testParkSlice = false, 0 }
}

// FirstSleepRace makes every re-try before the barrier see nothing (the
// first sleep's, the spin's, the one after the first sleep ran out), as if
// each publisher's progress were still in its store buffer when the waiter
// looked (the race the barrier closes), or with off every park take the
// barrier at once; Restore undoes it. FirstSleepsRanOut counts the first
// sleeps that ran out unwoken. Tests only, not concurrently with others.
func FirstSleepRace(skipFirstRecheck, off bool) (restore func()) {
	testSkipFirstRecheck, testNoFirstSleep = skipFirstRecheck, off
	return func() { testSkipFirstRecheck, testNoFirstSleep = false, false }
}

// FirstSleepsRanOut returns the number of first sleeps that ran out unwoken.
func FirstSleepsRanOut() uint64 { return firstSleepsRanOut.Load() }

// BeforeParkLoad runs f as each sleep of a wait begins, before the futex
// word is loaded; Restore undoes it. Tests only, not concurrently with others.
func BeforeParkLoad(f func(seq *atomic.Uint32)) (restore func()) {
	testBeforeSeqLoad = f
	return func() { testBeforeSeqLoad = nil }
}

// DelayContextWake makes the wake a context's end sends a parked waiter
// count itself in started and sleep d before it touches the segment;
// Restore undoes it. Tests only, not concurrently with others.
func DelayContextWake(d time.Duration) (started *atomic.Int64, restore func()) {
	started = new(atomic.Int64)
	testBeforeContextWake = func() { started.Add(1); time.Sleep(d) }
	return started, func() { testBeforeContextWake = nil }
}

// FD returns the segment's descriptor (tests of sealed memfd segments).
func (r *Ring) FD() int { return int(r.seg.FD()) }

// WatchLiveness makes the consumer call seen with each slot it asks about
// and the answer, after asking (MPSC recovery; the questions go to the
// ring's Liveness, so in a drop-oldest ring they include this process's
// producers' about the release lock's holder). Tests only, before reading.
func (c *Consumer) WatchLiveness(seen func(slot int, alive bool)) { c.r.watchAlive = seen }

// ProducerWaitLine returns the producers' waiting words the consumer wakes
// (tests that stand in for a parked producer of another process).
func (c *Consumer) ProducerWaitLine() ring.WaitLine { return c.pw }

// BellRetry sets how long a producer waits before it tries a failed
// doorbell id again; restore undoes it. BellOpens counts the doorbells
// producers mapped. Tests only.
func BellRetry(d time.Duration) (restore func()) {
	old := bellRetry
	bellRetry = d
	return func() { bellRetry = old }
}

// BellOpens returns the doorbells producers mapped.
func BellOpens() uint64 { return testBellOpens.Load() }

// IdleChecks returns how many times the consumer looked for damage while
// it found nothing to read (a sleep that ran out: checkIdle).
func (c *Consumer) IdleChecks() uint64 { return c.idleChecks.Load() }
