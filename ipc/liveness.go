package ipc

import (
	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/ring"
)

// consumerAlive reports whether a live process holds the consumer role.
func (r *Ring) consumerAlive() bool {
	ok, err := r.seg.Locked(ring.ConsumerLine, ring.LineSize)
	return ok || err != nil // never declare a peer dead on doubt
}

// producersAlive reports whether any producer is attached: the SPSC
// producer's lock, or any MPSC slot whose holder is alive.
func (r *Ring) producersAlive() bool {
	if r.r.Kind() == ring.SPSC {
		ok, err := r.seg.Locked(ring.ProducerLine, ring.LineSize)
		return ok || err != nil
	}
	for i := 0; i < r.r.Slots(); i++ {
		if r.slotAlive(i) {
			return true
		}
	}
	return false
}

// slotAlive reports whether the holder of MPSC slot i is alive; see
// slotLiveness. It answers true when it cannot tell: never skip on doubt.
// Every decision that a slot's holder is dead goes through here: the MPSC
// consumer's recovery, the drop-oldest release lock, Doctor and its repair,
// and (through slotLiveness) Stats.
func (r *Ring) slotAlive(i int) bool {
	alive, err := r.slotLiveness(i, r.r.Slot(i))
	return alive || err != nil
}

// slotLiveness decides whether the holder of MPSC slot i (whose words sl
// the caller loaded from the slot) is alive. The kernel decides, across
// PID namespaces: the slot's open-file-description lock is released when
// its holder dies, however it dies, wherever it runs. The PID and start time
// recorded in the slot are only a hint that can prove a holder dead, and
// only to an observer in the PID namespace the slot records (sl.PIDNamespace
// equal to ours): in a container sharing /dev/shm the PID is another
// process's, or none. The hint exists for one case: a lock kept alive after
// its holder died by a child that inherited the descriptor (descriptors
// are O_CLOEXEC, so only a fork without exec can do that; a Go program
// cannot).
//
// A slot recording namespace 0 (unknown: written by a producer that
// predates the field, or that could not read /proc/self/ns/pid) is judged
// by its lock alone. Asking its PID instead would bring back, for every such
// producer in a container, the silent corruption this rule exists to
// prevent (a live reservation skipped, its late commit landing in reused
// space); trusting the lock costs, at worst, a ring stalled behind a
// forked child that keeps a dead holder's lock, which is visible (Stats,
// doctor) and ends when that child exits.
func (r *Ring) slotLiveness(i int, sl ring.SlotStats) (bool, error) {
	locked, err := r.slotLocked(i)
	if err != nil || !locked {
		return locked, err
	}
	return !proc.Gone(int(sl.PID), sl.StartTime, sl.PIDNamespace), nil
}

// slotLocked reports whether a process holds MPSC slot i's lock.
func (r *Ring) slotLocked(i int) (bool, error) {
	return r.seg.Locked(int64(r.r.SlotOffset(i)), ring.LineSize)
}
