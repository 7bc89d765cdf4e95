// Sequences (FlagSequences): producers number records and resume after a
// restart; the consumer discards duplicates.

package ring

import (
	"encoding/binary"
	"fmt"
)

// initSeqs loads where the producer's sequences resume, in a ring with
// sequences: begun is the region offset of the word holding the highest
// sequence written into a record (stored before that record's commit), done
// (SPSC; 0 in MPSC) of the word holding the last one committed (stored
// after the position store).
//
// Why the successor of a producer killed at any instruction neither loses
// nor duplicates (docs/layout.md, "Sequences", and docs/design.md): the
// consumer discards a record of ours when its sequence is at or below the
// last it delivered of ours, which is the sequence of a record we
// committed. Every record is committed after its sequence was stored in
// begun (program order, release stores), and begun never decreases; the
// caller holds our role, so the predecessor is gone and its stores are
// visible. So the numbers from begun+1 on, which new records get, are above
// every sequence the predecessor may have committed: none of them is
// discarded, and nothing committed is renumbered. What may be uncommitted
// is InDoubt: MPSC, the record of sequence begun (each record is committed
// before the next one is begun); SPSC, the records after done (a batch is
// committed by one position store, then done is stored).
func (p *Producer) initSeqs(begun, done uint64) error {
	if !p.r.seqs {
		return nil
	}
	p.seqBegun = word(p.r.region, begun)
	// Acquire: pairs with the predecessor's stores in stamp (begun) and
	// storeDone (done); it is gone, we hold its role.
	high := p.seqBegun.Load()
	from := high
	if done != 0 {
		p.seqDone = word(p.r.region, done)
		p.seqDoneV = p.seqDone.Load()
		// A producer that kept only this word (an older release) leaves
		// begun behind it.
		high = max(high, p.seqDoneV)
		from = p.seqDoneV + 1
	}
	if high == 1<<64-1 {
		p.err = corruptf(begun, "last sequence %d leaves no sequence for the next record", high)
		return p.err
	}
	p.seq, p.seqHigh = high+1, high
	p.doubtFrom, p.doubtTo = min(max(from, 1), high+1), high+1
	return nil
}

// stamp writes the commit time and the sequence of the record at index i,
// if the ring's records carry them. Plain stores: the header store after
// them publishes them. A sequence above any so far is stored in the begun
// word first, before the record can be committed (initSeqs says why).
// Small enough to inline: a ring without either makes no call.
func (p *Producer) stamp(i uint64) {
	if p.r.ts || p.r.seqs {
		p.stampExtras(i)
	}
}

// stampExtras is stamp's work for a ring whose records carry a timestamp,
// a sequence or both.
func (p *Producer) stampExtras(i uint64) {
	if p.r.ts {
		binary.LittleEndian.PutUint64(p.data[i+p.r.tsOff:], uint64(nanotime()))
	}
	if p.r.seqs {
		s := p.seq
		binary.LittleEndian.PutUint64(p.data[i+p.r.seqOff:], s)
		if s > p.seqHigh {
			p.seqHigh = s
			publish(p.seqBegun, s)
		}
		if p.hook != nil {
			p.hook(stepSeqStored)
		}
	}
}

// committed moves on from the sequence of a record just committed (SPSC:
// and stores it as the last committed).
func (p *Producer) committed() {
	if p.r.seqs {
		p.storeDone(p.seq)
		p.seq++
	}
}

// storeDone stores s as the SPSC producer's last committed sequence, after
// the position store that committed it, if it is the highest yet.
func (p *Producer) storeDone(s uint64) {
	if p.seqDone != nil && s > p.seqDoneV {
		p.seqDoneV = s
		publish(p.seqDone, s)
	}
}

// NextSeq returns the sequence number the next record gets: one past the
// highest this producer, or its predecessors in the role (the SPSC
// producer, or the MPSC slot, across restarts), may have committed. A new
// ring's first is 1.
func (p *Producer) NextSeq() uint64 { return p.seq }

// InDoubt returns the sequences, [from, to), that the predecessor in this
// producer's role may have died committing: every record it wrote with a
// sequence below from was committed, none with one at or above to (which
// is NextSeq when the producer opened). MPSC: the predecessor's last
// record, from = to-1 (a commit cannot be told from a death just before
// it); SPSC: the records after its last position store (a batch), empty if
// it finished its last write. A producer that resends the messages it had
// given sequences from on, in order, each with its original sequence
// (TryWriteSeq), before any new message, loses none and duplicates none:
// the consumer discards each one that was committed.
func (p *Producer) InDoubt() (from, to uint64) { return p.doubtFrom, p.doubtTo }

// TryWriteSeq is TryWrite with the record's sequence number given: a
// producer retrying a message it may already have committed (after a crash,
// say) sends it with its original sequence, and the consumer discards it if
// it was delivered. Sequences of one producer must increase, except that
// the messages InDoubt names may be resent first, from its start.
func (p *Producer) TryWriteSeq(seq uint64, msg []byte) error {
	if !p.r.seqs {
		return fmt.Errorf("ring: TryWriteSeq on a ring created without sequences")
	}
	saved := p.seq
	p.seq = seq
	err := p.TryWrite(msg)
	if err != nil {
		p.seq = saved
	} else {
		p.seq = max(p.seq, saved)
	}
	return err
}

// duplicate reports whether the data record at index i (header h) carries
// a sequence at or below the last one delivered from its producer, and if
// not, records it as delivered. The last delivered sequence lives in the
// segment (the slot's word, or line 4 in SPSC), so a restarted consumer
// keeps discarding what its predecessor delivered.
func (c *Consumer) duplicate(i, h uint64) bool {
	seq := binary.LittleEndian.Uint64(c.data[i+c.r.seqOff:])
	if c.hold {
		return c.duplicateHeld(seq, h) // the region's words wait for Release
	}
	return c.duplicateSeq(seq, h)
}

// duplicateSeq is duplicate for a record of sequence seq and header h.
func (c *Consumer) duplicateSeq(seq, h uint64) bool {
	w := word(c.r.region, offDelivSeq)
	if c.mpsc {
		slot := headerSlot(h)
		if slot >= c.r.slots {
			return false // damage; the record is delivered, nothing remembered
		}
		w = word(c.r.region, c.r.SlotOffset(slot)+slotDelivSeq)
	}
	// Our own word (the consumer's), or our predecessor's store of it.
	if d := w.Load(); seq <= d {
		if c.deliveredPastBegun(d, h) {
			return true // c.err says; the caller leaves the record unread (an overwrite ring's has been copied and released)
		}
		dups := word(c.r.region, offDuplicates)
		publish(dups, dups.Load()+1)
		return true
	}
	publish(w, seq)
	return false
}

// SeqBegun returns the last sequence the producer of slot began (SPSC:
// slot 0, the later of its begun and last committed words; MPSC: the
// slot's last sequence), loaded with acquire: pairs with the producer's
// store of it before the commit of the record it numbers, so a last
// sequence delivered loaded before it is never past it in an undamaged
// ring (the consumer's duplicate check, and package ops's Validate).
// slot must be in range.
func (r *Ring) SeqBegun(slot int) uint64 {
	if r.kind == MPSC {
		return word(r.region, r.SlotOffset(slot)+slotLastSeq).Load()
	}
	// A producer that kept only the last committed (an older release)
	// leaves begun behind it, as initSeqs allows.
	return max(word(r.region, offSeqBegun).Load(), word(r.region, offLastSeq).Load())
}

// deliveredPastBegun is the duplicate path's check of a last sequence
// delivered, d, of the producer of the record of header h (the SPSC
// producer, or the record's MPSC slot, in range): d above the last
// sequence that producer began is an impossible state (a record is
// delivered after its commit, which comes after its sequence was stored
// as begun, and begun never decreases), left by another process writing
// the word (2^64-1 in it would discard every record as a duplicate,
// silently). It then sets c.err to ErrCorrupt naming the word and reports
// true. Only a record found a duplicate pays for it: a load or two.
func (c *Consumer) deliveredPastBegun(d, h uint64) bool {
	slot, off, begunOff := 0, uint64(offDelivSeq), uint64(offSeqBegun)
	if c.mpsc {
		slot = headerSlot(h) // in range: the caller checked
		base := c.r.SlotOffset(slot)
		off, begunOff = base+slotDelivSeq, base+slotLastSeq
	}
	begun := c.r.SeqBegun(slot)
	if d <= begun {
		return false
	}
	c.err = fmt.Errorf("ring: the last sequence delivered at region offset %d holds %d, past the last sequence begun %d (region offset %d): "+
		"an impossible state, in which every record would be discarded as a duplicate; %s: %w", off, d, begun, begunOff, writtenRemedy, ErrCorrupt)
	return true
}
