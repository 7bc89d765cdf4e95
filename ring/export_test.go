package ring

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// FormatAt is the test-only hook that starts both positions at start, so a
// test can run a ring through the 2^64 wrap of its positions.
func FormatAt(region []byte, c Config, start uint64) error { return formatAt(region, c, start) }

// RecordSize exposes recordSize to tests.
func RecordSize(n uint64) uint64 { return recordSize(n) }

// Region offsets tests corrupt.
const (
	OffProducerPos = offProducerPos
	OffConsumerPos = offConsumerPos
	OffCapacity    = offCapacity
	OffVersion     = offVersion
	OffChecksum    = offChecksum
)

// Steps of an MPSC write at which a test stops the real code, as if the
// producer were killed there (DieAt).
const (
	StepIntent    = stepIntent    // intent published, no compare-and-swap yet
	StepCAS       = stepCAS       // space taken, nothing written
	StepPadding   = stepPadding   // wrap padding written (if the record wraps)
	StepPending   = stepPending   // pending header written
	StepPayload   = stepPayload   // payload written, not counted
	StepCounted   = stepCounted   // counted, not committed
	StepCommitted = stepCommitted // a batch's record committed, the next not begun
)

// dying is the panic with which a producer stopped by DieAt unwinds.
type dying struct{}

// DieAt arms p to stop, as if killed, when its real write code reaches
// step for the nth time (counting from 1): the hook panics there and
// RunDying recovers. Nothing after that point runs; p must not be used
// again (its successor is a new Producer for the slot).
func DieAt(p *Producer, step, nth int) {
	p.hook = func(s int) {
		if s != step {
			return
		}
		if nth--; nth == 0 {
			panic(dying{})
		}
	}
	p.setFast()
}

// RunDying runs f and reports whether a producer armed by DieAt died in
// it. Any other panic goes on.
func RunDying(f func()) (died bool) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(dying); !ok {
				panic(v)
			}
			died = true
		}
	}()
	f()
	return false
}

// ReserveDying runs p.TryWrite(msg), the real code, and stops it as a
// producer killed right after step would stop. It fails t if p did not
// get there.
func ReserveDying(t testing.TB, p *Producer, msg []byte, step int) {
	t.Helper()
	DieAt(p, step, 1)
	if !RunDying(func() { _ = p.TryWrite(msg) }) {
		t.Fatalf("ReserveDying: the write never reached step %d", step)
	}
}

// BatchDying runs p.WriteBatch(msgs), the real code, and stops it as a
// producer killed part of the way would stop: its first commit records
// committed, then for the next one step (StepCAS: nothing of it written,
// StepPending: its pending header, StepPayload: and its payload,
// StepCounted: and it is counted). It fails t if p did not get there.
func BatchDying(t testing.TB, p *Producer, msgs [][]byte, commit, step int) {
	t.Helper()
	switch {
	case step == StepCAS && commit > 0:
		DieAt(p, StepCommitted, commit)
	case step == StepCAS:
		DieAt(p, StepCAS, 1)
	default:
		DieAt(p, step, commit+1)
	}
	if !RunDying(func() { _, _ = p.WriteBatch(msgs) }) {
		t.Fatalf("BatchDying: the batch never reached step %d of record %d", step, commit)
	}
}

// RegionOf returns the region a Ring views.
func RegionOf(r *Ring) []byte { return r.region }

// SetConsumerPos stores the consumer position directly.
func SetConsumerPos(region []byte, pos uint64) { word(region, offConsumerPos).Store(pos) }

// SetLastSeq stores a slot's (or the SPSC producer's) last committed
// sequence directly: a producer killed between its commit and this store.
func SetLastSeq(r *Ring, slot int, seq uint64) {
	off := uint64(offLastSeq)
	if r.kind == MPSC {
		off = r.SlotOffset(slot) + slotLastSeq
	}
	word(r.region, off).Store(seq)
}

// DisableCounters stops p and c from updating the message and byte
// counters, to measure what they cost.
func DisableCounters(p *Producer, c *Consumer) { p.noCounters, c.noCounters = true, true }

// CommitDying writes msg as a header-commit ring's producer killed after
// its commit and before its position store would: the record is readable,
// the producer position does not include it.
func CommitDying(p *Producer, msg []byte) error {
	pos, err := p.reserve(uint64(len(msg)))
	if err != nil {
		return err
	}
	p.put(pos, msg)
	return nil
}

// OffReleaseLock and OffZeroEnd: the release lock and zeroing mark of an
// MPSC drop-oldest ring.
const (
	OffReleaseLock = offReleaseLock
	OffZeroEnd     = offZeroEnd
)

// ReclaimDying runs p.TryWriteOverwrite(msg), the real code, in a
// goroutine and stops it as a producer killed in its reclaim would stop:
// holding the release lock, its zeroing mark published, nothing zeroed.
// The goroutine is parked there rather than unwound (a panic would run the
// deferred unlock) until t ends; then it exits with runtime.Goexit. It
// fails t if p wrote without reclaiming.
func ReclaimDying(t testing.TB, p *Producer, msg []byte) {
	t.Helper()
	if !parkAtRelease(t, p.r, func() { _, _ = p.TryWriteOverwrite(msg) }) {
		t.Fatal("ReclaimDying: the producer did not reclaim")
	}
}

// parkAtRelease runs run, the real code, in a goroutine and parks it at
// r's first release whose zeroing mark is published (nothing zeroed yet),
// until t ends; then it exits with runtime.Goexit, not unwound (a panic
// would run the deferred unlock). It reports whether run got there.
func parkAtRelease(t testing.TB, r *Ring, run func()) bool {
	reached, release, exited := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	r.hook = func(s int) {
		if s == stepReleaseMarked && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
			runtime.Goexit()
		}
	}
	go func() {
		defer close(exited)
		run()
	}()
	t.Cleanup(func() { close(release); <-exited })
	select {
	case <-reached:
		return true
	case <-exited:
		return false
	}
}

// SetAfterRun installs fn, called after each piece of p's MPSC WriteBatch
// (a run of records, or a record written alone) with its length.
func SetAfterRun(p *Producer, fn func(n int)) { p.afterRun = fn }

// Intent returns slot k's intent (position, length).
func Intent(r *Ring, k int) (uint64, uint64) { return r.intent(k) }

// SetHook installs fn, called at each step of p's MPSC writes (the Step
// constants).
func SetHook(p *Producer, fn func(step int)) { p.hook = fn; p.setFast() }

// ReleaseDying runs c.ReadBatch(1, …), the real code, in a goroutine and
// stops it as a consumer killed in its release would stop: holding the
// release lock, its zeroing mark published, nothing zeroed yet (the test
// zeroes part of the range itself). The goroutine is parked there until t
// ends (a panic would run the deferred unlock). It fails t if c released
// nothing.
func ReleaseDying(t testing.TB, c *Consumer) {
	t.Helper()
	if !parkAtRelease(t, c.r, func() { _, _ = c.ReadBatch(1, func([]byte) {}) }) {
		t.Fatal("ReleaseDying: the consumer released nothing")
	}
}

// Fast reports whether p takes the plain ring's fast write path now.
func Fast(p *Producer) bool { return p.fast }
