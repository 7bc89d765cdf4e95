package ops

import (
	"errors"
	"fmt"
	"time"

	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
)

// Diagnosis is what Doctor found.
type Diagnosis struct {
	Problems []string // what is wrong, each a sentence (for people: test the fields below, not these)
	// DeadProducers lists the MPSC slots that have had a holder and have
	// no live one now: closed or died. The slot's words do not tell a
	// clean Close from a death (Close only releases the slot's lock, which
	// is all a death does too: docs/layout.md, "Producer slots" and
	// "Liveness"), so a producer that closed cleanly is listed here until
	// a producer takes its slot again. Such a slot is free to take; it
	// is a problem only if a reservation of it blocks the ring (Stuck).
	DeadProducers []int
	Stuck         bool // the consumer position is at an uncommitted reservation of a dead producer
	Pending       int  // committed messages waiting, as far as the walk got
	Repaired      int  // dead reservations skipped by the repair
	// Damaged marks a ring whose words or records are inconsistent (a
	// problem says which): the walk or Validate's checks failed with
	// ipc.ErrCorrupt. Nothing read past the damage can be trusted, and the
	// repair does not touch such a ring: stop every process using it,
	// remove and recreate it (its messages are lost).
	Damaged bool
	// Waiting is the position of the uncommitted MPSC reservation the walk
	// stopped at, and Behind the bytes reserved past it up to the producer
	// position (committed records among them, which no consumer reads
	// before that reservation is committed or skipped); both 0 if the walk
	// did not stop at one.
	Waiting, Behind uint64
	// Stalled marks a consumer position at an uncommitted reservation of
	// a live producer (slot StalledSlot) that did not move between two
	// looks StallLook apart: that producer holds a claim, is slow or stuck
	// mid-write, or another process forged its intent. A note says so, not
	// a problem: a live producer's reservation is never skipped, however
	// slow (a claim may be held on purpose), so Doctor cannot call it
	// wrong; if it stays, restart that slot's process.
	Stalled     bool
	StalledSlot int
	// Notes are what Doctor saw that is not wrong in itself (Healthy
	// ignores them), each a sentence: a Stalled reservation.
	Notes []string
}

// StallLook is how long Doctor waits before its second look at an
// uncommitted reservation of a live producer (Diagnosis.Stalled): an
// ordinary write in flight is committed well within it.
var StallLook = 200 * time.Millisecond

// Healthy reports whether Doctor found nothing wrong.
func (d Diagnosis) Healthy() bool { return len(d.Problems) == 0 }

// Doctor checks r without changing it: the header and descriptor (already
// validated by ipc.Open), the positions, every pending record, what
// Validate checks (a drop-oldest ring's zeroing mark, last-delivered
// sequences), and the producer slots. Damage it finds is a problem in the
// Diagnosis (with Damaged set), not an error. A walk that ends at an
// uncommitted reservation of a live producer is looked at again after
// StallLook (Doctor sleeps that long): one that has not moved is noted
// (Stalled, Notes), not a problem. With repair, it also takes the
// consumer role (if no live consumer holds it) and skips the reservations of dead producers that block the
// ring, as a consumer would, counting them in the ring's lost counters.
// A repair asks for a write, so on a ring opened read-only it is refused
// with ErrReadOnly (and an empty Diagnosis) before anything is examined,
// whether or not there would be anything to repair: diagnose with repair
// false, or open the ring writable to repair it. With a live consumer the
// repair returns ipc.ErrBusy (that consumer skips dead reservations
// itself). A damaged ring is not repaired (nothing in it can be trusted).
//
// A segment that cannot be read at all (its file truncated or grown after
// it was mapped, or a page of it faulting) is not diagnosed: Doctor
// returns an error matching ipc.ErrCorrupt and ErrFault that says which
// and what to do, and an empty Diagnosis.
func Doctor(r *ipc.Ring, repair bool) (d Diagnosis, err error) {
	h, err := enter("doctor", r)
	if err != nil {
		return d, err
	}
	defer h.Leave()
	if repair {
		if err := writable("repair", h); err != nil {
			return d, err
		}
	}
	err = h.Inspect(func() error {
		var err error
		d, err = doctor(h, repair)
		return err
	})
	if errors.Is(err, ErrFault) {
		return Diagnosis{}, err
	}
	return d, err
}

// doctor is Doctor, run under Inspect.
func doctor(h *handle.Ring, repair bool) (Diagnosis, error) {
	var d Diagnosis
	var recs []ring.Record
	err := h.Inspect(func() error {
		var err error
		recs, err = h.R.Peek(1 << 30)
		return err
	})
	if errors.Is(err, ErrFault) {
		return d, err
	}
	if err != nil {
		d.Damaged = true
		d.Problems = append(d.Problems, fmt.Sprintf("the ring is damaged: %v", err))
	} else if err := validateZeroMark(h); err != nil {
		d.Damaged = true
		d.Problems = append(d.Problems, fmt.Sprintf("the ring is damaged: %v", err))
	}
	if err := validateSeqs(h); err != nil {
		d.Damaged = true
		d.Problems = append(d.Problems, fmt.Sprintf("the ring is damaged: %v", err))
	}
	for _, rec := range recs {
		if rec.Type == ring.TypeData {
			d.Pending++
		}
	}
	if n := len(recs); n > 0 && (recs[n-1].Type == ring.TypeNone || recs[n-1].Type == ring.TypePending) {
		// A reservation not yet committed: stuck only if its owner is dead.
		last := recs[n-1]
		d.Waiting, d.Behind = last.Pos, behind(h, last.Pos)
		if (last.Type == ring.TypeNone || !h.SlotAlive(last.Slot)) && !anyCoveringAlive(h, last.Pos) && stillUncommitted(h, last.Pos) {
			d.Stuck = true
			d.Problems = append(d.Problems, fmt.Sprintf("a reservation at position %d belongs to a dead producer and blocks the ring until a consumer skips it", last.Pos))
		} else if k, ok := stalled(h, last); ok {
			d.Stalled, d.StalledSlot = true, k
			d.Notes = append(d.Notes, fmt.Sprintf("the consumer waits at an uncommitted reservation of live producer slot %d (pid %d) at position %d, with %d bytes reserved behind it, unmoved for %v: that producer holds a claim, is slow or stuck mid-write, or another process forged its intent; if it stays, restart slot %d's process", k, h.R.Slot(k).PID, last.Pos, d.Behind, StallLook, k))
		}
	}
	for i := 0; i < h.R.Slots(); i++ {
		sl := h.R.Slot(i)
		if sl.PID != 0 && !h.SlotAlive(i) {
			locked, _ := h.SlotLocked(i)
			if locked {
				// Said only of a holder recorded in our own PID namespace:
				// elsewhere the PID means nothing and the lock decides.
				d.Problems = append(d.Problems, fmt.Sprintf("producer slot %d is locked but its recorded process %d (in this PID namespace) is gone: a child that inherited the descriptor keeps the lock; stop that process", i, sl.PID))
			}
			d.DeadProducers = append(d.DeadProducers, i)
		}
	}
	if !repair || !d.Stuck || d.Damaged {
		return d, nil
	}
	c, done, err := h.Consumer()
	if err != nil {
		return d, fmt.Errorf("ops: repair %q needs the consumer role (a live consumer skips dead reservations itself): %w", h.Seg.Path(), err)
	}
	defer func() { _ = done() }()
	for c.Blocked() {
		ok, err := c.Recover()
		if err != nil {
			return d, err
		}
		if !ok {
			break // a live producer owns it after all
		}
		d.Repaired++
		// Skip the padding it became, so the next reservation is examined;
		// committed records stay for the real consumer.
		if !c.SkipPadding() {
			break
		}
	}
	return d, nil
}

// stillUncommitted reports whether a new walk still ends at an uncommitted
// reservation at pos. Doctor asks it after it found no live producer that
// owns the reservation it saw: a producer that committed it meanwhile and
// moved its intent on to its next reservation (or closed) would otherwise
// be taken for a dead one. A producer publishes its intent before it
// reserves and keeps it until its next reservation, so a reservation
// still uncommitted after no live intent covered it is a dead producer's.
func stillUncommitted(h *handle.Ring, pos uint64) bool {
	recs, err := h.R.Peek(1 << 30)
	if err != nil || len(recs) == 0 {
		return false // damage is reported by the first walk; an empty ring is not stuck
	}
	last := recs[len(recs)-1]
	return last.Pos == pos && (last.Type == ring.TypeNone || last.Type == ring.TypePending)
}

// behind returns the bytes reserved past the uncommitted reservation at
// pos, up to the producer position: past the end of a slot's intent that
// covers pos, else past pos.
func behind(h *handle.Ring, pos uint64) uint64 {
	end := pos
	for i := 0; i < h.R.Slots(); i++ {
		sl := h.R.Slot(i)
		if pos-sl.IntentPos < sl.IntentLen {
			end = sl.IntentPos + sl.IntentLen
			break
		}
	}
	if p := h.R.Stats().ProducerPos; p-end <= h.R.Capacity() {
		return p - end
	}
	return 0
}

// stalled reports whether the uncommitted reservation last, which a live
// producer owns, holds the consumer still: a live slot k's intent covers
// it, and after StallLook the consumer position, that intent and the
// reservation (still the end of the walk, still uncommitted) are all
// unchanged. An ordinary write in flight is committed meanwhile.
func stalled(h *handle.Ring, last ring.Record) (k int, ok bool) {
	k = -1
	for i := 0; i < h.R.Slots(); i++ {
		sl := h.R.Slot(i)
		if last.Pos-sl.IntentPos < sl.IntentLen && h.SlotAlive(i) {
			k = i
			break
		}
	}
	if k < 0 {
		return 0, false
	}
	before, c := h.R.Slot(k), h.R.Stats().ConsumerPos
	time.Sleep(StallLook)
	after := h.R.Slot(k)
	if h.R.Stats().ConsumerPos != c || after.IntentPos != before.IntentPos || after.IntentLen != before.IntentLen || !h.SlotAlive(k) {
		return 0, false
	}
	return k, stillUncommitted(h, last.Pos)
}

// anyCoveringAlive reports whether a live producer's intent covers pos.
func anyCoveringAlive(h *handle.Ring, pos uint64) bool {
	for i := 0; i < h.R.Slots(); i++ {
		sl := h.R.Slot(i)
		if pos-sl.IntentPos < sl.IntentLen && h.SlotAlive(i) {
			return true
		}
	}
	return false
}
