package ops

import (
	"errors"
	"fmt"

	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
)

// zeroMarkOffset is the region offset of the zeroing mark (docs/layout.md,
// line 4, region 552), for the error's text.
const zeroMarkOffset = 4*ring.LineSize + 40

// Validate checks r's words as a consumer checks them when it takes the
// role, without changing anything (safe on a ring opened read-only and
// against live producers and a live consumer): the positions as a pair
// (aligned, the producer at most a capacity ahead), the record at the
// consumer position, in a drop-oldest MPSC ring the zeroing mark (region
// 552), and in a ring with sequences that no last-delivered sequence is
// past the last one begun (a consumer would then discard new messages as
// duplicates). It is cheap (a few loads and one record), for health
// checks that poll; Doctor walks every record.
//
// It returns nil if it found nothing wrong, an error matching
// ipc.ErrCorrupt that says what is damaged where, or, for a segment that
// cannot be read at all, one matching ipc.ErrCorrupt and ErrFault. A ring
// whose words are damaged cannot be repaired: stop every process using it,
// remove it and recreate it (the messages in it cannot be trusted).
func Validate(r *ipc.Ring) error {
	h, err := enter("validate", r)
	if err != nil {
		return err
	}
	defer h.Leave()
	return h.Inspect(func() error { return validate(h) })
}

// validate is Validate, run under Inspect.
func validate(h *handle.Ring) error {
	if _, err := h.R.Peek(1); err != nil {
		return err
	}
	if err := validateZeroMark(h); err != nil {
		return err
	}
	return validateSeqs(h)
}

// validateZeroMark checks the zeroing mark of a drop-oldest MPSC ring as
// the first holder of its release lock does (docs/layout.md, "Overwrite
// rings", step 2): a mark z other than the consumer position c must have
// z-c <= p-c and be a multiple of 8. It loads c, z, p and c again, and
// judges only a pair where c held still; a mark that fails is looked at
// again (a release under way moves it), and only one that fails every
// look is damage.
func validateZeroMark(h *handle.Ring) error {
	if h.R.Kind() != ring.MPSC || !h.R.Overwrite() {
		return nil
	}
	var bad error
	for range 8 {
		st := h.R.Stats()
		c := st.ConsumerPos
		z := h.R.ZeroMark()
		st2 := h.R.Stats()
		if st2.ConsumerPos != c {
			continue // moved: look again
		}
		p := st2.ProducerPos
		if ring.ZeroMarkFits(z, c, p) {
			return nil
		}
		bad = fmt.Errorf("ops: zeroing mark %d at region offset %d is inconsistent with consumer position %d and producer position %d (capacity %d): %w", z, zeroMarkOffset, c, p, h.R.Capacity(), ipc.ErrCorrupt)
	}
	return bad // nil if the consumer position never held still: a busy ring, not a damaged one
}

// validateSeqs checks, in a ring with sequences, that no last-delivered
// sequence is past the last one begun of its producer (SPSC: region 560
// against 448 and 432; MPSC: each slot's +104 against its +96, as
// ring.Ring.SeqBegun reads them). The delivered word is loaded before the
// begun one, and both only grow, so a live pair never fails.
func validateSeqs(h *handle.Ring) error {
	if !h.R.Sequences() {
		return nil
	}
	if h.R.Kind() != ring.MPSC {
		deliv := h.R.Stats().DelivSeq
		if begun := h.R.SeqBegun(0); deliv > begun {
			return fmt.Errorf("ops: last sequence delivered %d (region offset 560) is past the last sequence begun %d: a consumer would discard the producer's next messages as duplicates: %w", deliv, begun, ipc.ErrCorrupt)
		}
		return nil
	}
	for i := range h.R.Slots() {
		deliv := h.R.Slot(i).DelivSeq
		if begun := h.R.SeqBegun(i); deliv > begun {
			return fmt.Errorf("ops: producer slot %d's last sequence delivered %d (region offset %d) is past its last sequence begun %d: a consumer would discard its next messages as duplicates: %w", i, deliv, h.R.SlotOffset(i)+104, begun, ipc.ErrCorrupt)
		}
	}
	return nil
}

// isDamage reports whether err says the ring's words or records are
// damaged (not that the segment could not be read).
func isDamage(err error) bool {
	return errors.Is(err, ipc.ErrCorrupt) && !errors.Is(err, ErrFault)
}
