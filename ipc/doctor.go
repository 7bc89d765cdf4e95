package ipc

import (
	"fmt"

	"github.com/shmring/shmring/ring"
)

// Peek returns up to max pending messages, copied, without consuming them
// (see ring.Ring.Peek). Safe on a ring opened read-only. A segment file
// truncated (or grown) after it was mapped is reported as ErrCorrupt.
func (r *Ring) Peek(max int) ([]ring.Record, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	return r.peek(max)
}

func (r *Ring) peek(max int) ([]ring.Record, error) {
	var recs []ring.Record
	err := r.inspect(func() error {
		var err error
		recs, err = r.r.Peek(max)
		return err
	})
	return recs, err
}

// ResetHighWater starts a new high-watermark period at the current depth.
func (r *Ring) ResetHighWater() error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	if r.seg.ReadOnly() {
		return fmt.Errorf("ipc: %q is open read-only", r.Path())
	}
	return r.inspect(func() error { r.r.ResetHighWater(); return nil })
}

// Diagnosis is what Doctor found.
type Diagnosis struct {
	Problems      []string // what is wrong, each a sentence
	DeadProducers []int    // MPSC slots that have had a holder and are not held by a live one (see Stats' Alive)
	Stuck         bool     // the consumer position is at an uncommitted reservation of a dead producer
	Pending       int      // committed messages waiting, as far as the walk got
	Repaired      int      // dead reservations skipped by Repair
}

// Healthy reports whether Doctor found nothing wrong.
func (d Diagnosis) Healthy() bool { return len(d.Problems) == 0 }

// Doctor checks the ring without changing it: the header and descriptor
// (already validated by Open), the positions, every pending record, and
// the producer slots. With repair, it also takes the consumer role (if no
// live consumer holds it) and skips reservations of dead producers that
// block the ring, as a consumer would, counting them in lost.
//
// A segment file truncated (or grown) after it was mapped, or one that
// faults when read, is not diagnosed: Doctor returns ErrCorrupt saying so
// and what to do, as every inspection path does.
func (r *Ring) Doctor(repair bool) (d Diagnosis, err error) {
	if err := r.enter(); err != nil {
		return d, err
	}
	defer r.leave()
	err = r.inspect(func() error {
		var err error
		d, err = r.doctor(repair)
		return err
	})
	return d, err
}

// doctor is Doctor, run under inspect.
func (r *Ring) doctor(repair bool) (Diagnosis, error) {
	var d Diagnosis
	recs, err := r.peek(1 << 30)
	if isUnreadable(err) {
		return d, err
	}
	if err != nil {
		d.Problems = append(d.Problems, fmt.Sprintf("the records are damaged: %v", err))
	}
	for _, rec := range recs {
		if rec.Type == ring.TypeData {
			d.Pending++
		}
	}
	if n := len(recs); n > 0 && (recs[n-1].Type == ring.TypeNone || recs[n-1].Type == ring.TypePending) {
		// A reservation not yet committed: stuck only if its owner is dead.
		last := recs[n-1]
		if last.Type == ring.TypeNone || !r.slotAlive(last.Slot) {
			if !r.anyCoveringAlive(last.Pos) {
				d.Stuck = true
				d.Problems = append(d.Problems, fmt.Sprintf("a reservation at position %d belongs to a dead producer and blocks the ring until a consumer skips it", last.Pos))
			}
		}
	}
	for i := 0; i < r.r.Slots(); i++ {
		sl := r.r.Slot(i)
		if sl.PID != 0 && !r.slotAlive(i) {
			locked, _ := r.slotLocked(i)
			if locked {
				// Said only of a holder recorded in our own PID namespace:
				// elsewhere the PID means nothing and the lock decides.
				d.Problems = append(d.Problems, fmt.Sprintf("producer slot %d is locked but its recorded process %d (in this PID namespace) is gone: a child that inherited the descriptor keeps the lock; stop that process", i, sl.PID))
			}
			d.DeadProducers = append(d.DeadProducers, i)
		}
	}
	if !repair || !d.Stuck {
		return d, nil
	}
	if r.seg.ReadOnly() {
		return d, fmt.Errorf("ipc: repair %q: open it read-write", r.Path())
	}
	c, err := r.newConsumer(WithWait(Spin))
	if err != nil {
		return d, fmt.Errorf("ipc: repair %q needs the consumer role (a live consumer skips dead reservations itself): %w", r.Path(), err)
	}
	defer c.Close()
	for c.rc.Blocked() {
		ok, err := c.rc.Recover()
		if err != nil {
			return d, err
		}
		if !ok {
			break // a live producer owns it after all
		}
		d.Repaired++
		// Skip the padding it became, so the next reservation is examined;
		// committed records stay for the real consumer.
		if !c.rc.SkipPadding() {
			break
		}
	}
	return d, nil
}

// anyCoveringAlive reports whether a live producer's intent covers pos.
func (r *Ring) anyCoveringAlive(pos uint64) bool {
	for i := 0; i < r.r.Slots(); i++ {
		sl := r.r.Slot(i)
		if pos-sl.IntentPos < sl.IntentLen && r.slotAlive(i) {
			return true
		}
	}
	return false
}
