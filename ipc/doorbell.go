// The producer's half of the doorbell rule (docs/layout.md, "Line 15:
// doorbell"): a ring created with Config.Doorbell may be a member of a wait
// set that sleeps on one doorbell file for many rings; a producer that
// wakes the consumer rings that doorbell instead of the ring's own line 5.

package ipc

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// bellRetry is how long a producer waits before it tries again to open a
// doorbell id that failed: a hostile or stale id costs at most one failed
// open per 100 ms, never a syscall storm. A variable for tests.
var bellRetry = 100 * time.Millisecond

// bellCache is one producer's doorbell: the mapping of the doorbell that
// line 15 named when it last woke the consumer, opened lazily and kept
// until the id changes or the producer is released. Only the producer's
// goroutine uses it (the wake path), and its release.
type bellCache struct {
	line ring.DoorbellLine
	dir  string // the directory of the ring path this process opened
	uid  uint32 // the ring file's owner: a doorbell must have the same

	id   uint64 // the id of d (0: none mapped)
	d    *shm.Doorbell
	bell ring.Bell

	failID uint64    // the id whose open failed last
	failAt time.Time // when
}

// newBellCache returns the doorbell cache of a producer of r, nil if r has
// no FlagDoorbell or is a memfd (no directory: its producers wake line 5,
// and a set sleeps on that member's own word).
func newBellCache(r *Ring) *bellCache {
	if !r.r.Doorbell() {
		return nil
	}
	b := &bellCache{line: r.r.DoorbellLine(), dir: r.seg.Dir()}
	uid, err := r.seg.OwnerUID()
	if err != nil || b.dir == "" {
		b.dir = "" // no doorbell can be validated: ring line 5
	}
	b.uid = uid
	return b
}

// wake is wake's doorbell rule, called after progress was published: the
// fast path is the same one load of line 5's parked flag. A producer that
// wins line 5's parked 1 -> 0 and finds a doorbell id in line 15 rings the
// doorbell (parked 1 -> 0, seq + 1, FUTEX_WAKE), adds 1 to line 5's seq (no
// system call), and counts the wake in the doorbell and in line 15; with no
// id, or a doorbell it cannot open and validate (counted in line 15's
// failures), it wakes line 5 as any producer does.
func (b *bellCache) wake(cw ring.WaitLine) {
	if cw.Parked.Load() == 0 || !cw.Parked.CompareAndSwap(1, 0) {
		return
	}
	if id := b.line.ID.Load(); id != 0 {
		if bl, ok := b.get(id); ok {
			cw.Seq.Add(1)
			if bl.Parked.Load() != 0 && bl.Parked.CompareAndSwap(1, 0) {
				bl.Seq.Add(1)
				_, _ = futex.Wake(bl.Seq, math.MaxInt32)
				bl.Wakes.Add(1)
				b.line.Wakes.Add(1)
			}
			return
		}
	}
	cw.Seq.Add(1)
	_, _ = futex.Wake(cw.Seq, math.MaxInt32)
	cw.Wakeups.Add(1)
}

// get returns doorbell id's futex line, mapping it if it is not the one
// mapped; false if it cannot be opened and validated now.
func (b *bellCache) get(id uint64) (ring.Bell, bool) {
	if id == b.id {
		return b.bell, true
	}
	if b.dir == "" || id == b.failID && time.Since(b.failAt) < bellRetry {
		return ring.Bell{}, false
	}
	b.drop()
	d, err := shm.OpenDoorbell(b.dir, id, b.uid)
	if err == nil {
		var bl ring.Bell
		if bl, err = ring.AttachDoorbell(d.Mem(), id); err == nil {
			b.id, b.d, b.bell = id, d, bl
			testBellOpens.Add(1)
			return bl, true
		}
		_ = d.Close()
	}
	b.line.Failures.Add(1)
	b.failID, b.failAt = id, time.Now()
	return ring.Bell{}, false
}

// drop unmaps the doorbell mapped, if any.
func (b *bellCache) drop() {
	if b.d != nil {
		_ = b.d.Close()
	}
	b.id, b.d, b.bell = 0, nil, ring.Bell{}
}

// testBellOpens counts doorbells mapped by producers (tests).
var testBellOpens atomic.Uint64
