// Held reads: a consumer that reads ahead of its released position and
// releases later, up to a record boundary it names. The consumer position
// in the region stays the release point, so the layout is unchanged and a
// successor resumes there, reading again what was held.

package ring

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// Errors of held reads: values, so that a caller retrying allocates nothing.
var (
	errHoldOverwrite = fmt.Errorf("ring: hold: an overwrite ring's producers reclaim the oldest records, which a held read would still hold; read it without holding: %w", ErrInvalid)
	errNotHolding    = fmt.Errorf("ring: release: the consumer does not hold its reads (Hold): its reads release what they deliver: %w", ErrInvalid)
)

// Hold makes the consumer hold what it reads: ReadBatch and TryRead
// deliver records and move a read cursor (Position reports the released
// position, the one in the region), but release nothing; Release hands the
// space back, up to a record boundary. Call it before the first read. It
// returns ErrInvalid for an overwrite ring.
//
// What a held consumer keeps process-local until Release: the read cursor,
// and, in a ring with sequences, the last sequence delivered of each
// producer, with which it discards duplicates as it reads. Release stores
// those sequences in the region's words (as an unheld consumer stores them
// when it reads), then the position: a successor resumes at the released
// position with the sequences of what was released, and delivers again
// exactly the records that were held and not released.
//
// The read-ahead never passes what producers may write: they write up to a
// capacity past the released position, as for any consumer (the positions
// they check are the region's); an MPSC reader stops at the frontier, a
// header-commit reader a capacity past the released position.
func (c *Consumer) Hold() error {
	if c.r.overwrite {
		return errHoldOverwrite
	}
	c.hold, c.rel = true, c.pos
	c.setFast()
	if c.r.seqs {
		c.seen = make([]uint64, max(c.r.slots, 1))
		for k := range c.seen {
			// Our predecessor's stores (we hold its role), or ours.
			c.seen[k] = c.delivWord(k).Load()
		}
	}
	return nil
}

// Holding reports whether the consumer holds its reads (Hold).
func (c *Consumer) Holding() bool { return c.hold }

// Cursor returns how far the consumer has read: past every record it
// delivered or skipped. It equals Position unless the consumer holds its
// reads.
func (c *Consumer) Cursor() uint64 { return c.pos }

// Release hands back to the producers every held record before pos: pos
// must be a record boundary between the released position and the cursor
// (the End of a record Current described, say), else it returns ErrInvalid
// and changes nothing. Records the consumer skipped rather than delivered
// (padding, duplicates) right after pos are released with it, so that
// releasing all that was delivered releases all that was read. In a ring
// with sequences the released records' sequences are stored first (what
// discards duplicates after a restart), then the position (MPSC: the range
// zeroed first, as every release does). The sequences are stored one
// record at a time, in order: a consumer killed during a Release leaves
// its successor resuming after the last one stored, anywhere between the
// released position and pos, never past pos (what it skips was delivered
// and its release begun). A held record changed since it was read returns
// ErrCorrupt.
func (c *Consumer) Release(pos uint64) error {
	if c.err != nil {
		return c.err
	}
	if !c.hold {
		return errNotHolding
	}
	if pos-c.rel > c.pos-c.rel {
		return fmt.Errorf("ring: release: position %d is outside the held records [%d, %d]: %w", pos, c.rel, c.pos, ErrInvalid)
	}
	// Check first that pos is a boundary, so that a bad pos changes nothing.
	if err := c.walkHeld(pos, false); err != nil {
		return err
	}
	if c.r.seqs {
		_ = c.walkHeld(pos, true) // checked above
	}
	if c.hook != nil {
		c.hook(stepHeldStored)
	}
	c.releaseHeld(pos)
	if c.hook != nil {
		c.hook(stepHeldReleased)
	}
	// Producers raise the depth pressure level; the consumer lowers it as
	// the depth falls, when it loads the producer position. Held bytes
	// count in the depth, so a release is when it falls: look now, or a
	// held consumer that released all and idles leaves pressure raised.
	// (The pressure word: raised by producers' compare-and-swap, a value.)
	if c.err == nil && word32(c.r.region, offPressure).Load()&PressureDepth != 0 {
		_, _ = c.reloadProducer(c.rel) // damage sets c.err, returned below
	}
	return c.err
}

// Steps of a held Release at which a test's hook (Consumer.hook) is
// called, so that it can stop the real code there as a consumer killed at
// that point would stop (export_hold_test.go).
const (
	stepHeldStored   = 200 + iota // the released records' sequences stored, the position not
	stepHeldReleased              // the position stored
)

// walkHeld walks the held records from the released position to pos
// (ErrInvalid if pos is not a record boundary; ErrCorrupt if a record no
// longer decodes), storing, when apply is set, each data record's sequence
// as the unheld consumer does when it reads (duplicateSeq: the region's
// word, duplicates counted).
func (c *Consumer) walkHeld(pos uint64, apply bool) error {
	for x := c.rel; x != pos; {
		i := x & c.mask
		// Acquire: pairs with the producer's commit of the record, read
		// before (no producer writes it until it is released).
		h := word(c.data, i).Load()
		t, _, size, ok := c.r.decodeRecord(h, i, c.pos-x)
		if !ok {
			c.err = corruptf(c.r.dataOff+i, "held record header %#016x at position %d no longer fits the %d bytes read", h, x, c.pos-x)
			return c.err
		}
		if pos-x < size {
			return fmt.Errorf("ring: release: position %d is inside the record at %d (%d bytes), not at a record boundary: %w", pos, x, size, ErrInvalid)
		}
		if apply && t == TypeData {
			c.duplicateSeq(binary.LittleEndian.Uint64(c.data[i+c.r.seqOff:]), h)
		}
		x += size
	}
	return nil
}

// releaseHeld releases the held records before pos, and after them every
// record the consumer skipped without delivering, up to the first it
// delivered or the cursor.
func (c *Consumer) releaseHeld(pos uint64) {
	for pos != c.pos {
		i := pos & c.mask
		// Acquire: as in walkHeld.
		h := word(c.data, i).Load()
		t, _, size, ok := c.r.decodeRecord(h, i, c.pos-pos)
		if !ok {
			break // damage: the next Release or read finds it
		}
		if t == TypeData {
			if !c.r.seqs {
				break // delivered
			}
			slot := 0
			if c.mpsc {
				slot = headerSlot(h)
			}
			seq := binary.LittleEndian.Uint64(c.data[i+c.r.seqOff:])
			if (c.mpsc && slot >= c.r.slots) || seq > c.delivWord(slot).Load() {
				break // delivered (a damaged slot: delivered, as the read path does)
			}
			c.duplicateSeq(seq, h) // a duplicate: counted now
		}
		pos += size
	}
	if pos == c.rel {
		return
	}
	cursor := c.pos
	c.release(c.rel, pos)
	c.pos, c.rel = cursor, pos
}

// delivWord is the region's word holding the last sequence delivered of
// producer slot k (SPSC: the ring's).
func (c *Consumer) delivWord(k int) *atomic.Uint64 {
	if c.mpsc {
		return word(c.r.region, c.r.SlotOffset(k)+slotDelivSeq)
	}
	return word(c.r.region, offDelivSeq)
}

// duplicateHeld is duplicateSeq for a held consumer: against, and into,
// the sequences it has delivered (Hold), leaving the region's words and
// the duplicates count to Release.
func (c *Consumer) duplicateHeld(seq, h uint64) bool {
	slot := 0
	if c.mpsc {
		slot = headerSlot(h)
		if slot >= c.r.slots {
			return false // damage; the record is delivered, nothing remembered
		}
	}
	if d := c.seen[slot]; seq <= d {
		_ = c.deliveredPastBegun(d, h) // damage (loaded at Hold): c.err says
		return true
	}
	c.seen[slot] = seq
	return false
}
