// Peek: a read-only walk of the records from the consumer position.

package ring

import "encoding/binary"

// Record is one record found by Peek.
type Record struct {
	Pos     uint64 // its position
	End     uint64 // a data or padding record's end: the position just past it
	Type    uint8  // TypeData, TypePadding, TypePending or TypeNone
	Slot    int    // the producer slot in its header (MPSC)
	Payload []byte // a copy of a data record's payload
	Seq     uint64 // rings with sequences: a data record's sequence; else 0
	Time    int64  // rings with timestamps: a data record's commit time (CLOCK_MONOTONIC ns); else 0
}

// Peek walks up to max records from the consumer position without
// consuming anything, copying each data record's payload: a read-only
// inspection, safe on a read-only mapping and against live producers (a
// record being overwritten may show stale bytes; a position that moves
// while it walks ends the walk). It stops at the producer position, at an
// uncommitted MPSC reservation (which it reports), or at damage, which it
// returns as ErrCorrupt along with the records before it.
//
// In a header-commit ring it walks as that ring's consumer reads: from the
// consumer position along the committed headers to the first zero header
// (records a dead producer committed past the published producer position
// included), at most a capacity.
func (r *Ring) Peek(max int) ([]Record, error) {
	pr, err := r.loadPositions(100)
	if err == errMoving {
		return nil, nil // the consumer kept moving: the walk ended before it began
	} else if err != nil {
		return nil, err
	}
	cw := word(r.region, offConsumerPos)
	c, p := pr.c, pr.p
	end := p
	if r.polled {
		end = c + r.capacity
	}
	var out []Record
	for pos := c; pos != end && len(out) < max; {
		i := pos & (r.capacity - 1)
		// Acquire: pairs with the store that committed the record (as in
		// ReadBatch); the loads of cw below pair with the consumer's position
		// stores: a moved consumer means the walk read space being reused.
		h := word(r.data, i).Load()
		t := headerType(h)
		rec := Record{Pos: pos, Type: t, Slot: headerSlot(h)}
		if t == TypeNone && h != 0 {
			if cw.Load() != c {
				return out, nil // the consumer moved: the walk read space being reused
			}
			return out, corruptf(r.dataOff+i, "record header %#016x has type 0 but is not zero", h)
		}
		if t == TypeNone && r.polled {
			if d := p - pos; d != 0 && d <= r.capacity && cw.Load() == c {
				// Below the published position every header is committed:
				// the consumer would wait here for ever.
				return out, corruptf(r.dataOff+i, "record header at position %d, below the producer position %d, is zero", pos, p)
			}
			return out, nil // nothing more is committed
		}
		if t == TypeNone || t == TypePending {
			if r.kind == SPSC {
				if cw.Load() != c {
					return out, nil // the consumer moved: the walk read space being reused
				}
				return out, corruptf(r.dataOff+i, "record header %#016x is not committed in an spsc ring", h)
			}
			return append(out, rec), nil
		}
		t, length, size, ok := r.decodeRecord(h, i, end-pos)
		if !ok {
			if cw.Load() != c {
				return out, nil // the consumer moved: the walk read space being reused
			}
			return out, corruptf(r.dataOff+i, "record header %#016x (length %d) is invalid", h, length)
		}
		rec.End = pos + size
		if t == TypeData {
			j := i + HeaderSize + r.extra
			rec.Payload = append([]byte(nil), r.data[j:j+length]...)
			if r.seqs {
				rec.Seq = binary.LittleEndian.Uint64(r.data[i+r.seqOff:])
			}
			if r.ts {
				rec.Time = int64(binary.LittleEndian.Uint64(r.data[i+r.tsOff:]))
			}
			out = append(out, rec)
		}
		pos += size
	}
	return out, nil
}
