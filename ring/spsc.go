// SPSC writes: one producer reserves by its own position and publishes
// records with a position store (or, header commit, with their headers).

package ring

import (
	"fmt"
)

// reserve finds room for a record with an n-byte payload, writing a padding
// record at the tail if the record must start at index 0. It returns the
// position of the record's header; nothing is published.
func (p *Producer) reserve(n uint64) (uint64, error) {
	if p.err != nil {
		return 0, p.err
	}
	if n > p.r.maxMessage {
		return 0, fmt.Errorf("ring: message of %d bytes exceeds the maximum of %d: %w", n, p.r.maxMessage, ErrTooLarge)
	}
	if p.mpsc {
		return p.reserveShared(n)
	}
	need := p.r.dataSize(n)
	pos := p.pos
	tail := p.r.capacity - pos&p.mask
	total := need
	if need > tail {
		total = tail + need
	}
	if !p.fastFits(pos + total - p.consCached) {
		if p.r.polled {
			// Header commit: store the position before loading the
			// consumer's, so that everything committed after this store
			// lies within capacity-8 bytes of it, which bounds how far a
			// consumer can be past the stored position when this producer
			// dies before its next store (docs/layout.md). A batch's
			// records are all committed here (its padding too).
			publish(p.prodPos, pos)
		}
		if err := p.reloadConsumer(); err != nil {
			return 0, err
		}
		depth := pos + total - p.consCached
		p.raisePressure(depth)
		if depth > p.limit() {
			return 0, ErrFull
		}
	}
	if need > tail {
		if p.r.polled {
			// The consumer would see the padding as soon as it is
			// written: write it after the record at index 0 (flushPad).
			p.padPos, p.padSize = pos, tail
		} else {
			// Padding to the end of the data area. It lies in free
			// space, so the consumer cannot see it before the next
			// publish.
			publish(word(p.data, pos&p.mask), makeHeader(uint32(tail-HeaderSize), 0, TypePadding))
		}
		pos += tail
	}
	return pos, nil
}

// TryWrite copies msg into the ring as one record and publishes it. It
// returns ErrFull if there is no room (nothing is written), ErrTooLarge if
// msg exceeds MaxMessage, or ErrCorrupt if the region is damaged.
//
// A plain ring's write (Producer.fast) that fits before the end of the data
// area and within room by the cached consumer position is done here, with
// nothing but the copy, the header, the position and the counters; every
// other write goes to tryWrite, or for a plain MPSC ring (Producer.fastShared)
// to tryWriteShared. Keep this path free of calls other than the copy's: its
// cost is issue 17's (docs/benchmarks.md).
func (p *Producer) TryWrite(msg []byte) error {
	n := uint64(len(msg))
	if p.fast && p.err == nil && n <= p.r.maxMessage {
		pos := p.pos
		i := pos & p.mask
		need := (HeaderSize + n + Align - 1) &^ (Align - 1) // dataSize: no extras
		if need <= p.r.capacity-i && pos+need-p.consCached <= p.room() {
			// p.pos (private) is set before the copy, so that fewer
			// values live across memmove's call (each one a spill and a
			// reload).
			p.pos = pos + need
			// need <= capacity-i: the payload lies inside the data area
			// (dataBytes: no bounds check).
			if dst := dataBytes(p.data, i+HeaderSize, n); smallCopy(n) {
				copySmall(dst, msg) // inline, no memmove call
			} else {
				copy(dst, msg)
			}
			// i is 8-aligned (p.pos is: every record's size is) and
			// below the capacity: dataWord's index, no bounds check.
			publish(dataWord(p.data, i), makeHeader(uint32(n), 0, TypeData))
			// Release: the header and payload stores above are visible
			// to a consumer that loads this position.
			publish(p.prodPos, p.pos)
			p.count(1, n)
			return nil
		}
	}
	if p.fastShared {
		return p.tryWriteShared(msg)
	}
	return p.tryWrite(msg)
}

// tryWrite is TryWrite for every ring and every case: options, a claim,
// a wrap, a full ring, a look at the consumer position.
func (p *Producer) tryWrite(msg []byte) error {
	if p.claimed {
		return ErrClaimPending
	}
	pos, err := p.reserve(uint64(len(msg)))
	if err != nil {
		return err
	}
	if p.mpsc {
		// putShared, written out: calling it from here measured 10% to
		// 15% slower in the cross-process SPSC case (shmring-spsc against
		// c-ring, four interleaved pairs of builds), which never takes this
		// branch; the placement of the SPSC path's code, not its work.
		i := pos & p.mask
		copy(p.data[i+HeaderSize+p.r.extra:], msg)
		p.stamp(i)
		if p.hook != nil {
			p.hook(stepPayload)
		}
		p.count(1, uint64(len(msg)))
		if p.hook != nil {
			p.hook(stepCounted)
		}
		publish(word(p.data, i), makeHeader(uint32(len(msg)), p.slot, TypeData))
		if p.hook != nil {
			p.hook(stepCommit)
		}
		p.committed()
		return nil
	}
	p.put(pos, msg)
	publish(p.prodPos, p.pos)
	if p.hook != nil {
		p.hook(stepCommit)
	}
	p.count(1, uint64(len(msg)))
	p.committed()
	return nil
}

// put writes one record at pos (returned by reserve) and advances p.pos.
func (p *Producer) put(pos uint64, msg []byte) {
	i := pos & p.mask
	copy(p.data[i+HeaderSize+p.r.extra:], msg)
	p.stamp(i)
	next := pos + p.r.dataSize(uint64(len(msg)))
	p.zeroNext(next)
	publish(word(p.data, i), makeHeader(uint32(len(msg)), 0, TypeData))
	p.flushPad()
	p.pos = next
}
