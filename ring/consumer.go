package ring

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"

	"github.com/shmring/shmring/internal/pad"
)

// Consumer reads records from a ring. It is not safe for concurrent use: one
// goroutine, in one process, holds the consumer role at a time.
//
// Records are delivered through a callback with a slice that points into the
// ring. The slice is valid only until the callback returns; copy what must
// outlive it. Everything read from the region is validated first: a damaged
// position, length or record type returns ErrCorrupt and the consumer stays
// failed, having delivered nothing it could not validate.
type Consumer struct {
	r    *Ring
	data []byte
	mask uint64

	prodPos *atomic.Uint64 // shared: the producer's position (untrusted)
	consPos *atomic.Uint64 // shared: our published position

	msgsOut, bytesOut *atomic.Uint64
	zeroEnd           *atomic.Uint64 // MPSC: end of the batch being zeroed
	mpsc              bool
	fullBatches       uint64 // header commit: full batches read, to sample the depth

	pos        uint64 // our position; the shared copy trails it between releases
	prodCached uint64 // last producer position loaded and validated

	err error // sticky: set on corruption

	aboveSince int64 // adaptive level: when the delay went above target, 0 if below

	noCounters bool // test only: measure what the counters cost

	buf   []byte        // overwrite rings: the copy a record is delivered from
	fence atomic.Uint64 // overwrite rings: a private word whose update orders the copy before the check

}

// NewConsumer returns the consumer side of r, resuming at the released
// consumer position. It fails with ErrCorrupt if the positions in the region
// are inconsistent.
func (r *Ring) NewConsumer() (*Consumer, error) {
	c := pad.New[Consumer]()
	*c = Consumer{
		r:        r,
		data:     r.data,
		mask:     r.capacity - 1,
		prodPos:  word(r.region, offProducerPos),
		consPos:  word(r.region, offConsumerPos),
		msgsOut:  word(r.region, offMsgsOut),
		bytesOut: word(r.region, offBytesOut),
		zeroEnd:  word(r.region, offZeroEnd),
		mpsc:     r.kind == MPSC,
	}
	c.pos = c.consPos.Load()
	c.prodCached = c.pos
	if c.pos%Align != 0 {
		return nil, corruptf(offConsumerPos, "consumer position %d is not %d-aligned", c.pos, Align)
	}
	if _, err := c.reloadProducer(); err != nil {
		return nil, err
	}
	if c.mpsc && c.r.overwrite {
		// Finish a release a dead predecessor left, under the lock.
		if ok, err := r.lockRelease(releaseByConsumer); err != nil {
			return nil, err
		} else if ok {
			r.unlockRelease()
		}
		// Validate the position we resume at: the lock's holder may have
		// been live (not taken), and the word is untrusted either way.
		c.pos = c.consPos.Load()
		if _, err := c.reloadProducer(); err != nil {
			return nil, err
		}
	} else if c.mpsc {
		// A previous consumer that died while zeroing a delivered batch
		// left its end here: finish its release rather than deliver the
		// batch again or mistake the zeroed records for lost ones.
		if ze := c.zeroEnd.Load(); ze != c.pos && ze-c.pos <= c.prodCached-c.pos && ze%Align == 0 {
			c.release(c.pos, ze)
		}
	}
	return c, nil
}

// release hands [from, to) back to the producers. MPSC: the range is
// zeroed first (producers rely on unwritten space reading as zero), with
// its end recorded so that a consumer dying mid-way can be finished by the
// next one.
func (c *Consumer) release(from, to uint64) {
	if c.mpsc && c.r.overwrite {
		c.releaseCopied(from, to-from, false) // under the release lock
		return
	}
	if c.mpsc {
		publish(c.zeroEnd, to)
		i, n := from&c.mask, to-from
		if first := min(n, c.r.capacity-i); first > 0 {
			clear(c.data[i : i+first])
			clear(c.data[:n-first])
		}
	}
	c.pos = to
	publish(c.consPos, to)
}

// Position returns the consumer's position: every byte before it has been
// read and handed back (or reclaimed by producers, in an overwrite ring).
// A read call that moved it released room, whether or not it delivered a
// message (padding, duplicates, a skipped dead reservation): a parked
// producer must then be woken. It reads no shared memory.
func (c *Consumer) Position() uint64 { return c.pos }

// Err returns the sticky error that stopped the consumer, if any.
func (c *Consumer) Err() error { return c.err }

// Ring returns the ring this consumer reads.
func (c *Consumer) Ring() *Ring { return c.r }

// reloadProducer loads and validates the producer position and reports
// whether there is anything to read.
func (c *Consumer) reloadProducer() (bool, error) {
	var p uint64
	if c.r.overwrite {
		p = c.resync()
	} else {
		p = c.prodPos.Load()
	}
	// A header-commit ring's consumer may be past the published position
	// (span); it then has nothing to read by that position, depth 0.
	depth, _, ok := c.r.span(p, c.pos)
	if !ok {
		c.err = corruptf(offProducerPos, "producer position %d is inconsistent with consumer position %d (capacity %d)", p, c.pos, c.r.capacity)
		return false, c.err
	}
	if p != c.prodCached {
		c.prodCached = p
		c.r.raiseHighWater(depth)
	}
	c.r.lowerPressure(depth)
	return depth != 0, nil
}

// resync moves the consumer of an overwrite ring to the released position,
// which producers move past the records they reclaim, and returns the
// producer position loaded with it: a consistent pair, the released
// position having read the same before and after (both move meanwhile, so
// a pair loaded once can look inconsistent on a healthy ring).
func (c *Consumer) resync() uint64 {
	for {
		cp := c.consPos.Load()
		p := c.prodPos.Load()
		if c.consPos.Load() == cp {
			if cp%Align == 0 && p-cp <= c.r.capacity {
				c.pos = cp
			}
			return p // the caller reports damage
		}
	}
}

// Pending reports whether there are published records not yet read, loading
// the producer position if the cached one says there are none.
func (c *Consumer) Pending() (bool, error) {
	if c.err != nil {
		return false, c.err
	}
	if c.r.polled {
		return headerType(word(c.data, c.pos&c.mask).Load()) != TypeNone, nil
	}
	if c.pos != c.prodCached {
		return true, nil
	}
	return c.reloadProducer()
}

// TryRead delivers at most one record to fn and releases its space. It
// returns false if the ring is empty.
func (c *Consumer) TryRead(fn func(msg []byte)) (bool, error) {
	n, err := c.ReadBatch(1, fn)
	return n == 1, err
}

// ReadBatch delivers up to max records to fn, in order, then releases all
// their space with one position store. It returns the number delivered; 0
// with a nil error means the ring is empty. On ErrCorrupt the records
// delivered before the damage are released and counted. A nil fn returns
// ErrInvalid.
func (c *Consumer) ReadBatch(max int, fn func(msg []byte)) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if fn == nil {
		return 0, errNilRead
	}
	if c.r.overwrite {
		return c.readOverwrite(max, fn)
	}
	var n int
	var bytes uint64
	var now int64 // the clock, read once per batch when records carry time
	start := c.pos
	polled := c.r.polled
	for n < max {
		// Header commit: nothing the producer may have written lies a
		// capacity or more past the released position (start); there lie
		// this batch's own records, read but not yet released and zeroed.
		avail := c.r.capacity - (c.pos - start)
		if polled && avail == 0 {
			break
		}
		if !polled {
			if c.pos == c.prodCached {
				if ok, err := c.reloadProducer(); !ok || err != nil {
					break
				}
			}
			avail = c.prodCached - c.pos
		}
		i := c.pos & c.mask
		h := word(c.data, i).Load()
		if t := headerType(h); t == TypeNone || t == TypePending {
			if t == TypeNone && h != 0 {
				// Producers store whole headers: type 0 is the zero word.
				c.err = corruptf(c.r.dataOff+i, "record header %#016x has type 0 but is not zero", h)
			} else if !c.mpsc && (!polled || t == TypePending) {
				c.err = corruptf(c.r.dataOff+i, "record header %#016x is not committed in an spsc ring", h)
			}
			// MPSC: a reservation not yet committed; Blocked and Recover
			// deal with it. Header commit: nothing more is committed.
			break
		}
		t, length, size, ok := c.r.decodeRecord(h, i, avail)
		if !ok {
			c.err = corruptf(c.r.dataOff+i, "record header %#016x (type %d, length %d) is not a data or padding record that fits the %d published bytes, the data area and the maximum message size %d", h, t, length, avail, c.r.maxMessage)
			break
		}
		// Skip a duplicate (sequences): already delivered.
		if t == TypeData && !(c.r.seqs && c.duplicate(i, h)) {
			if c.r.ts {
				c.observe(i, &now)
			}
			j := i + HeaderSize + c.r.extra
			fn(c.data[j : j+length : j+length])
			n++
			bytes += length
		}
		c.pos += size
	}
	if c.pos != start {
		end := c.pos
		c.pos = start
		c.release(start, end)
		if polled {
			c.observeDepth(start, end, n == max)
		}
	}
	// A batch that took its maximum exactly at the last producer position
	// it loaded has not loaded it again, which is when pressure is lowered:
	// while the depth bit is raised, load it now, so that a consumer that
	// drained the ring and then stops or idles does not leave pressure
	// raised on an empty ring (one load of the pressure word per such batch).
	if n == max && !polled && c.pos == c.prodCached && c.err == nil &&
		word32(c.r.region, offPressure).Load()&PressureDepth != 0 {
		_, _ = c.reloadProducer() // damage sets c.err, returned below
	}
	if n > 0 && !c.noCounters {
		add2(c.msgsOut, uint64(n), c.bytesOut, bytes)
	}
	return n, c.err
}

// observeDepth keeps the high watermark and the pressure level of a
// header-commit ring, whose consumer does not load the producer position
// to read: the ring held at least the batch [start, end). The producer
// position is loaded (taking its line from the producer) only while
// pressure is raised and may need lowering, and on every 64th full batch
// (the consumer is behind: a sample of the depth). So the high watermark
// is a sampled lower bound in these rings; the producer raises it too
// whenever it loads the consumer position, near full.
func (c *Consumer) observeDepth(start, end uint64, full bool) {
	c.prodCached = end
	if full {
		c.fullBatches++
	}
	if (!full || c.fullBatches%64 != 1) && word32(c.r.region, offPressure).Load() == 0 {
		c.r.raiseHighWater(end - start)
		return
	}
	p := c.prodPos.Load()
	if p-end > c.r.capacity || p%Align != 0 {
		return // moving or damaged: the next read finds out
	}
	c.prodCached = p
	c.r.raiseHighWater(p - start)
	c.r.lowerPressure(p - end)
}

// Blocked reports whether the consumer is stopped, in an MPSC ring, at a
// reservation that is published (below the producer position) but not yet
// committed. Recover decides whether its owner is dead.
func (c *Consumer) Blocked() bool {
	if !c.mpsc || c.err != nil {
		return false
	}
	if c.pos == c.prodCached || c.r.overwrite {
		if ok, _ := c.reloadProducer(); !ok {
			return false
		}
	}
	t := headerType(word(c.data, c.pos&c.mask).Load())
	return t == TypeNone || t == TypePending
}

// Recover examines the uncommitted reservation the consumer is blocked at
// (see Blocked) and, if no live producer can own it, turns it into padding
// and counts it lost. alive reports whether the holder of a slot is alive;
// it is called only for slots whose intent covers the reservation, so a
// slot taken over by a restarted producer does not shield its predecessor's
// leftovers. It returns true if the consumer can make progress (the record
// was committed meanwhile, or has been skipped), false if a live producer
// owns it.
//
// A reservation is owned by the slot whose intent (position, length)
// covers it: a producer publishes its intent before it reserves. Two cases:
//   - the header is pending: its slot is named; the record is dead unless
//     that slot's intent still covers it and the slot's holder is alive.
//   - the header is zero: the owner died (or is about to write) between its
//     reservation and its first header store. If any slot whose intent
//     covers the position is alive, wait. Otherwise everything from here to
//     the nearest of: the end of the dead intents, the start of any other
//     intent, the first non-zero word, the producer position and the end of
//     the data area is unwritten space of dead reservations: skip it.
func (c *Consumer) Recover(alive func(slot int) bool) (bool, error) {
	if alive == nil {
		return false, errNilAlive
	}
	if c.mpsc && c.r.overwrite && c.err == nil {
		// Producers move the position too: hold it still, so that the
		// header examined is at the position and not in space a producer
		// reclaimed (and zeroed) a moment ago.
		ok, err := c.r.lockRelease(releaseByConsumer)
		if err != nil {
			c.err = err
			return false, err
		}
		if !ok {
			return false, nil
		}
		defer c.r.unlockRelease()
	}
	if !c.Blocked() {
		return c.err == nil, c.err
	}
	S, P, capacity := c.pos, c.prodCached, c.r.capacity
	i := S & c.mask
	hw := word(c.data, i)
	h := hw.Load()
	switch headerType(h) {
	case TypePending:
		slot, length := int(h>>32&0xffff), headerLength(h)
		size := c.r.dataSize(length)
		if headerReserved(h) || slot >= c.r.slots || length > c.r.maxMessage || size > P-S || i+size > capacity {
			c.err = corruptf(c.r.dataOff+i, "pending record header %#016x is out of range", h)
			return false, c.err
		}
		ipos, ilen, err := c.intent(slot)
		if err != nil {
			return false, err
		}
		if ilen <= capacity+c.r.maxMessage+2*HeaderSize && S-ipos < ilen && alive(slot) {
			return false, nil
		}
		if !hw.CompareAndSwap(h, makeHeader(uint32(size-HeaderSize), uint16(slot), TypePadding)) {
			return true, nil
		}
		c.countLost(slot, size)
		return true, nil
	case TypeNone:
		if h != 0 {
			c.err = corruptf(c.r.dataOff+i, "record header %#016x has type 0 but is not zero", h)
			return false, c.err
		}
		// Work in offsets from S: positions may wrap through 2^64.
		lim := min(P-S, capacity-i)
		owner, ownerLim := -1, uint64(0)
		for k := 0; k < c.r.slots; k++ {
			ipos, ilen, err := c.intent(k)
			if err != nil {
				return false, err
			}
			if ilen == 0 || ilen > capacity+c.r.maxMessage+2*HeaderSize {
				continue
			}
			if S-ipos < ilen { // this intent covers S
				if alive(k) {
					return false, nil
				}
				lim = min(lim, ipos+ilen-S)
				owner, ownerLim = k, ipos+ilen-S
			} else if d := ipos - S; d > 0 && d < lim {
				lim = d
			}
		}
		for j := uint64(Align); j < lim; j += Align {
			if word(c.data, (S+j)&c.mask).Load() != 0 {
				lim = j
				break
			}
		}
		end := S + lim
		size := end - S
		if !hw.CompareAndSwap(0, makeHeader(uint32(size-HeaderSize), 0, TypePadding)) {
			return true, nil
		}
		// A wrapping reservation is skipped in two pieces (the tail, then
		// the record at index 0); count the record once, with its last piece.
		if owner < 0 || lim == ownerLim {
			c.countLost(owner, 0)
		}
		c.countLostBytes(size)
		return true, nil
	}
	return true, nil
}

// intent loads slot k's intent for Recover, which bounds padding by it:
// an intent is 8-aligned (position and length), or the slot is damaged.
func (c *Consumer) intent(k int) (pos, n uint64, err error) {
	pos, n = c.r.intent(k)
	if pos%Align != 0 || n%Align != 0 {
		c.err = corruptf(c.r.SlotOffset(k)+slotIntentPos, "producer slot %d's intent (position %d, length %d) is not %d-aligned", k, pos, n, Align)
		return 0, 0, c.err
	}
	return pos, n, nil
}

// countLost counts one lost record of size bytes, against slot if known.
func (c *Consumer) countLost(slot int, size uint64) {
	lost := word(c.r.region, offLost)
	publish(lost, lost.Load()+1)
	c.countLostBytes(size)
	if slot >= 0 {
		w := word(c.r.region, c.r.SlotOffset(slot)+slotLost)
		publish(w, w.Load()+1)
	}
}

func (c *Consumer) countLostBytes(size uint64) {
	w := word(c.r.region, offLostBytes)
	publish(w, w.Load()+size)
}

// observe records the queueing delay of the data record at index i (its
// commit time is the word after its header): the histogram, the totals,
// and the adaptive pressure level. now caches the clock for the batch.
func (c *Consumer) observe(i uint64, now *int64) {
	c.observeStamp(int64(binary.LittleEndian.Uint64(c.data[i+c.r.tsOff:])), now)
}

// observeStamp records the delay of a record committed at ts.
func (c *Consumer) observeStamp(ts int64, now *int64) {
	if *now == 0 {
		*now = nanotime()
	}
	d := *now - ts
	if d < 0 || ts == 0 {
		d = 0 // a clock from another boot, or a damaged stamp: count, do not trust
	}
	b := 0
	if d > 0 {
		b = min(bits.Len64(uint64(d))-1, DelayBuckets-1)
	}
	hb := word(c.r.region, offDelayHist+uint64(b)*8)
	publish(hb, hb.Load()+1)
	cnt, sum := word(c.r.region, offDelayCount), word(c.r.region, offDelaySum)
	publish(cnt, cnt.Load()+1)
	publish(sum, sum.Load()+uint64(d))
	c.adapt(d, *now)
}

// adapt is the adaptive level, in the spirit of CoDel: when every record's
// delay has stayed above the target for a whole interval, the delay bit of
// the pressure word is raised; the first record below the target lowers it.
func (c *Consumer) adapt(d, now int64) {
	target := int64(word(c.r.region, offTargetDelay).Load())
	pw := word32(c.r.region, offPressure)
	if target <= 0 {
		c.aboveSince = 0
		return
	}
	if d < target {
		c.aboveSince = 0
		if old := pw.Load(); old&PressureDelay != 0 && pw.CompareAndSwap(old, old&^PressureDelay) {
			word(c.r.region, offPressureChanges).Add(1)
		}
		return
	}
	if c.aboveSince == 0 {
		c.aboveSince = now
		return
	}
	interval := int64(word(c.r.region, offDelayInterval).Load())
	if now-c.aboveSince >= interval {
		if old := pw.Load(); old&PressureDelay == 0 && pw.CompareAndSwap(old, old|PressureDelay) {
			word(c.r.region, offPressureChanges).Add(1)
		}
	}
}

// duplicate reports whether the data record at index i (header h) carries
// a sequence at or below the last one delivered from its producer, and if
// not, records it as delivered. The last delivered sequence lives in the
// segment (the slot's word, or line 4 in SPSC), so a restarted consumer
// keeps discarding what its predecessor delivered.
func (c *Consumer) duplicate(i, h uint64) bool {
	return c.duplicateSeq(binary.LittleEndian.Uint64(c.data[i+c.r.seqOff:]), h)
}

// duplicateSeq is duplicate for a record of sequence seq and header h.
func (c *Consumer) duplicateSeq(seq, h uint64) bool {
	w := word(c.r.region, offDelivSeq)
	if c.mpsc {
		slot := int(h >> 32 & 0xffff)
		if slot >= c.r.slots {
			return false // damage; the record is delivered, nothing remembered
		}
		w = word(c.r.region, c.r.SlotOffset(slot)+slotDelivSeq)
	}
	if seq <= w.Load() {
		d := word(c.r.region, offDuplicates)
		publish(d, d.Load()+1)
		return true
	}
	publish(w, seq)
	return false
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
read:
	for n < max {
		if cp := c.consPos.Load(); cp != c.pos {
			// Producers reclaimed records, perhaps many laps' worth: the
			// new position must lie within a capacity of the producer's.
			if p := c.prodPos.Load(); p-cp > c.r.capacity || cp%Align != 0 {
				if c.consPos.Load() != cp {
					continue // still moving: look again
				}
				c.err = corruptf(offConsumerPos, "consumer position %d is inconsistent with producer position %d", cp, p)
				break
			}
			c.pos = cp
		}
		p := c.prodPos.Load()
		if p == c.pos {
			break
		}
		avail := p - c.pos
		if avail > c.r.capacity || p%Align != 0 {
			if c.consPos.Load() != c.pos {
				continue // reclaimed meanwhile: resynchronise
			}
			c.err = corruptf(offProducerPos, "producer position %d is inconsistent with consumer position %d", p, c.pos)
			break
		}
		c.prodCached = p
		pos, i := c.pos, c.pos&c.mask
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
			continue
		}
		if c.r.ts {
			c.observeStamp(int64(binary.LittleEndian.Uint64(msg[c.r.tsOff-HeaderSize:])), &now)
		}
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
	if word32(c.r.region, offPressure).Load()&PressureDepth == 0 {
		return
	}
	cp := c.consPos.Load()
	p := c.prodPos.Load()
	if c.consPos.Load() != cp {
		return
	}
	if depth, _, ok := c.r.span(p, cp); ok {
		c.r.lowerPressure(depth)
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
	case c.consPos.Load() != pos:
		return copyReclaimed
	case bad:
		return copyDamaged
	}
	c.r.releaseRange(pos, pos+size)
	c.pos = pos + size
	return copyReleased
}

// SkipPadding releases padding records at the consumer position without
// delivering anything, and reports whether it stopped at a blocked
// reservation (Doctor's repair: it must not consume committed messages).
func (c *Consumer) SkipPadding() bool {
	start := c.pos
	for {
		if c.pos == c.prodCached {
			if ok, err := c.reloadProducer(); !ok || err != nil {
				break
			}
		}
		h := word(c.data, c.pos&c.mask).Load()
		if headerType(h) != TypePadding {
			break
		}
		size := recordSize(headerLength(h))
		if size > c.prodCached-c.pos || c.pos&c.mask+size > c.r.capacity {
			break
		}
		c.pos += size
	}
	if c.pos != start {
		end := c.pos
		c.pos = start
		c.release(start, end)
	}
	return c.Blocked()
}

// AddWaits counts n busy-wait iterations and y sched_yield calls of the
// consumer waiting for data.
func (c *Consumer) AddWaits(n, y uint64) {
	add2(word(c.r.region, offConsSpins), n, word(c.r.region, offConsYields), y)
}
