// Drop-oldest (FlagOverwrite): producers reclaim the oldest records when
// the ring is full; the consumer copies each record out and releases it
// only if no producer reclaimed it meanwhile. SPSC's reclaim and the
// consumer's read path for both kinds; MPSC's release lock is in
// shared_overwrite.go.

package ring

import (
	"encoding/binary"
	"fmt"
)

// TryWriteOverwrite is TryWrite for a ring created with Overwrite: when the
// record does not fit, the oldest records are reclaimed (newest wins) by
// moving the consumer position past them with compare-and-swap, and counted
// as drops. It returns how many messages were reclaimed. It still returns
// ErrFull when the record cannot fit even in an empty ring (a window
// smaller than the record).
func (p *Producer) TryWriteOverwrite(msg []byte) (int, error) {
	if !p.r.overwrite {
		return 0, fmt.Errorf("ring: TryWriteOverwrite on a ring created without Overwrite")
	}
	if p.claimed {
		return 0, ErrClaimPending
	}
	if p.mpsc {
		return p.tryWriteOverwriteShared(msg)
	}
	err := p.TryWrite(msg)
	if err != ErrFull {
		return 0, err
	}
	dropped, err := p.reclaim(uint64(len(msg)))
	if err != nil {
		return dropped, err
	}
	return dropped, p.TryWrite(msg)
}

// reclaim moves the consumer position past the oldest records until a
// record with an n-byte payload fits.
func (p *Producer) reclaim(n uint64) (int, error) {
	need := p.r.dataSize(n)
	pos := p.pos
	tail := p.r.capacity - pos&p.mask
	total := need
	if need > tail {
		total = tail + need
	}
	limit := p.limit()
	for {
		// Acquire: pairs with the consumer's compare-and-swap of its
		// position (releaseCopied), a release: it has copied the record.
		c := p.consPos.Load()
		if _, _, ok := p.r.span(pos, c); !ok {
			p.err = corruptf(offConsumerPos, "consumer position %d is inconsistent with producer position %d", c, pos)
			return 0, p.err
		}
		target, dropped := c, 0
		for pos+total-target > limit && target != pos {
			i := target & p.mask
			// Our own records (only this producer writes below its position):
			// the load pairs with our own stores.
			h := word(p.data, i).Load()
			// Only this producer writes below its position, and the
			// consumer only reads there: every record is committed, data
			// or padding, and lies within what the producer wrote.
			t, _, size, ok := p.r.decodeRecord(h, i, pos-target)
			if !ok {
				p.err = corruptf(p.r.dataOff+i, "record header %#016x at position %d is not a record the producer wrote (it wrote up to %d)", h, target, pos)
				return 0, p.err
			}
			if t == TypeData {
				dropped++
			}
			target += size
		}
		if pos+total-target > limit {
			return 0, ErrFull
		}
		if p.consPos.CompareAndSwap(c, target) {
			p.consCached = target
			p.AddDrops(uint64(dropped))
			return dropped, nil
		}
	}
}

// readOverwrite is ReadBatch for rings whose producers may reclaim the
// oldest records (Overwrite). A producer moves the consumer position past
// records the consumer may be reading, then reuses them; so the consumer
// copies each record out and releases it (releaseCopied) before it
// delivers the copy. The release succeeds only if the position never left
// the record while it was copied, so no producer can have reused its bytes:
// the copy is whole, and the record is the consumer's (no producer can
// also count it dropped). Otherwise a producer reclaimed the record: the
// copy is discarded and counted in lapped, never delivered torn. Damage is
// reported only when the position has not moved, so that garbage read from
// a record being overwritten is not mistaken for corruption.
func (c *Consumer) readOverwrite(max int, fn func(msg []byte)) (int, error) {
	var n int
	var bytes uint64
	var now int64
	lapped := word(c.r.region, offLapped)
	if c.buf == nil {
		c.buf = make([]byte, c.r.maxMessage+c.r.extra)
	}
	c.limit = max // Stop lowers it
	// turns bounds the loop: a capacity's worth of records besides the
	// max delivered. A turn that delivers nothing (padding, a record
	// reclaimed while it was copied, positions that moved meanwhile)
	// releases at least a header's 8 bytes or finds the positions moved by
	// another process; producers that publish or reclaim without end
	// (damaged, hostile, or lapping the consumer) must not keep one call
	// looping. The call then returns what it delivered; the next looks
	// again.
	turns := c.r.capacity / Align
	if max > 0 {
		turns += uint64(max)
	}
read:
	for n < c.limit && turns > 0 {
		turns--
		// Producers may have reclaimed records, perhaps many laps' worth,
		// moving the consumer position: resume from a pair of positions
		// the ring was in.
		pr, err := c.r.loadPositions(1)
		if err == errMoving {
			continue // reclaimed meanwhile: look again
		} else if err != nil {
			c.err = err
			break
		}
		c.pos = pr.c
		if pr.depth == 0 {
			break
		}
		p, avail := pr.p, pr.depth
		c.prodCached = p
		pos, i := c.pos, c.pos&c.mask
		// Acquire: pairs with the producer's header store (or the SPSC position
		// store) that published the record; releaseCopied then checks that no
		// producer reclaimed it while it was copied.
		h := word(c.data, i).Load()
		t := headerType(h)
		if c.mpsc && (t == TypeNone && h == 0 || t == TypePending) {
			break // a reservation not yet committed: Blocked and Recover deal with it
		}
		t, length, size, ok := c.r.decodeRecord(h, i, avail)
		bad := !ok
		var msg []byte
		if !bad && t == TypeData {
			msg = c.buf[:c.r.extra+length]
			copy(msg, c.data[i+HeaderSize:i+HeaderSize+c.r.extra+length])
		}
		switch c.releaseCopied(pos, size, bad) {
		case copyReclaimed:
			if msg != nil {
				publish(lapped, lapped.Load()+1)
			}
			continue // reclaimed while we read it: discard
		case copyDamaged:
			c.err = corruptf(c.r.dataOff+i, "record header %#016x (length %d) does not fit the %d published bytes or the data area", h, length, avail)
			break read
		case copyBusy:
			break read // MPSC: a live producer holds the release lock, or damage: read again later
		}
		if msg == nil {
			continue
		}
		// The extras come from the copy too: the ring may change now.
		if c.r.seqs && c.duplicateSeq(binary.LittleEndian.Uint64(msg[c.r.seqOff-HeaderSize:]), h) {
			if c.err != nil {
				break read // damage in the last sequence delivered
			}
			continue
		}
		if c.r.ts {
			c.observeStamp(int64(binary.LittleEndian.Uint64(msg[c.r.tsOff-HeaderSize:])), &now)
		}
		c.hdr = h // Current's
		fn(msg[c.r.extra:])
		n++
		bytes += length
	}
	if n > 0 && !c.noCounters {
		add2(c.msgsOut, uint64(n), c.bytesOut, bytes)
	}
	c.settlePressure()
	return n, c.err
}

// settlePressure lowers the depth pressure level of an overwrite ring, once
// per read batch, when the depth has fallen to the low level: its consumer
// does not go through reloadProducer, which does it in other rings (it
// never did it here, so pressure raised by producers stayed raised while
// the consumer read). Only while the level is raised does it load the
// positions: a pair read while the released position held still, which
// producers reclaiming move too; a moving or damaged pair waits for the
// next batch.
func (c *Consumer) settlePressure() {
	// The pressure word: raised by producers' compare-and-swap (a value).
	if word32(c.r.region, offPressure).Load()&PressureDepth == 0 {
		return
	}
	if pr, err := c.r.loadPositions(1); err == nil {
		c.r.lowerPressure(pr.depth)
	}
}

// What releaseCopied found.
const (
	copyReleased  = iota // released: the copy is whole and the consumer's
	copyReclaimed        // a producer reclaimed the record first: discard the copy
	copyDamaged          // the header was bad and the position did not move
	copyBusy             // MPSC: a live producer holds the release lock (or c.err is set)
)

// releaseCopied releases the record [pos, pos+size) the consumer has just
// copied out (bad: its header did not validate), or any range the consumer
// has read, if the consumer position is still at its start. SPSC: by compare-and-swap of the position. MPSC: under the
// release lock, which also zeroes it (shared_overwrite.go).
func (c *Consumer) releaseCopied(pos, size uint64, bad bool) int {
	if !c.mpsc {
		if bad {
			// Order the copy before the check: a read-modify-write has
			// release semantics on every architecture (a plain load could
			// otherwise be satisfied after the check's acquire load on
			// arm64).
			c.fence.Add(1)
			// Acquire: pairs with a reclaiming producer's compare-and-swap (reclaim).
			if c.consPos.Load() != pos {
				return copyReclaimed // garbage from a record being overwritten
			}
			return copyDamaged
		}
		// The compare-and-swap orders the copy before it.
		if !c.consPos.CompareAndSwap(pos, pos+size) {
			return copyReclaimed
		}
		c.pos = pos + size
		return copyReleased
	}
	// The lock's compare-and-swap orders the copy before the check.
	ok, err := c.r.lockRelease(releaseByConsumer)
	if err != nil {
		c.err = err
		return copyBusy
	}
	if !ok {
		return copyBusy
	}
	defer c.r.unlockRelease()
	switch {
	// Acquire: pairs with releaseRange's store by the previous holder.
	case c.consPos.Load() != pos:
		return copyReclaimed
	case bad:
		return copyDamaged
	}
	c.r.releaseRange(pos, pos+size)
	c.pos = pos + size
	return copyReleased
}
