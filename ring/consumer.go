// The consumer: resuming, releasing space, and the read path of rings
// without drop-oldest.

package ring

import (
	"encoding/binary"
	"fmt"
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
	limit      int    // the running ReadBatch's max; Stop lowers it to 0

	// Held reads (hold.go): pos is the read cursor, rel the released
	// position (the region's), seen the last sequence delivered per slot.
	hold bool
	rel  uint64
	seen []uint64

	err error // sticky: set on corruption

	aboveSince int64 // adaptive level: when the delay went above target, 0 if below

	noCounters bool // test only: measure what the counters cost

	// plain: an SPSC ring without drop-oldest, sequences, timestamps or
	// header commit, fixed when the consumer is made. fast: plain, not
	// holding its reads, counting (setFast): ReadBatch then takes its fast
	// path (read_plain.go), which does only what such a ring needs.
	plain, fast bool
	end         uint64 // the fast path: the end of the record being delivered (Current)
	stop        uint64 // the fast path: the end of the published bytes before the end of the data area
	maxMsg      uint64 // the ring's maximum message

	highWater *atomic.Uint64 // shared: the high watermark (consumer CAS; any process resets it)
	pressure  *atomic.Uint32 // shared: the pressure word (producers raise, the consumer lowers, CAS)

	hook func(step int) // test only: called at each step of a held Release (stepHeldStored)

	buf   []byte        // overwrite rings: the copy a record is delivered from
	hdr   uint64        // overwrite rings: the header of the record being delivered (Current)
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
		plain:    r.kind == SPSC && !r.overwrite && !r.polled && !r.seqs && !r.ts,
		maxMsg:   r.maxMessage,

		highWater: word(r.region, offHighWater),
		pressure:  word32(r.region, offPressure),
	}
	c.setFast()
	pr, err := r.loadPositions(0)
	if err != nil {
		return nil, err
	}
	// c.stop = c.pos: nothing known published yet (the fast read path
	// looks again; a zero c.stop would read as bytes left when pos is
	// within a capacity below 2^64).
	c.pos, c.prodCached, c.stop = pr.c, pr.c, pr.c
	if _, err := c.reloadProducer(c.pos); err != nil {
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
		// Acquire: pairs with releaseRange's store of the position under the lock.
		c.pos = c.consPos.Load()
		c.stop = c.pos
		if _, err := c.reloadProducer(c.pos); err != nil {
			return nil, err
		}
	} else if c.mpsc {
		// A previous consumer that died while zeroing a delivered batch
		// left its end here: finish its release rather than deliver the
		// batch again or mistake the zeroed records for lost ones.
		// Acquire: pairs with the predecessor's store of the mark in release,
		// made before it zeroed (it is gone: we hold its role).
		if ze := c.zeroEnd.Load(); ze != c.pos && ZeroMarkFits(ze, c.pos, c.prodCached) {
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
	c.pos, c.stop = to, to
	publish(c.consPos, to)
}

// Position returns the consumer's position: every byte before it has been
// read and handed back (or reclaimed by producers, in an overwrite ring).
// A read call that moved it released room, whether or not it delivered a
// message (padding, duplicates, a skipped dead reservation): a parked
// producer must then be woken. It reads no shared memory. A consumer that
// holds its reads has read up to its Cursor.
func (c *Consumer) Position() uint64 {
	if c.hold {
		return c.rel
	}
	return c.pos
}

// CheckPosition compares the consumer position word in the region with
// what this consumer last stored there (its Position: a consumer holding
// its reads stores its release point). Only the consumer writes that word
// in a ring without drop-oldest, so a difference means another process
// wrote the segment: CheckPosition then fails the consumer with ErrCorrupt
// naming the word, both values and what to do, and returns it (producers
// already refuse such a word; a consumer that only waits would not look at
// it again). It returns nil for an overwrite ring, whose producers move the
// word, and Err once the consumer failed. One load: for a consumer that
// found nothing to read for a while (package ipc calls it when a sleep runs
// out), never on the read path.
func (c *Consumer) CheckPosition() error {
	if c.err != nil || c.r.overwrite {
		return c.err
	}
	// Acquire: our own store, or another process's (the damage sought).
	want := c.Position()
	if got := c.consPos.Load(); got != want {
		c.err = fmt.Errorf("ring: the consumer position word at region offset %d holds %d, but this consumer last stored %d there and only it writes that word: %s: %w",
			offConsumerPos, got, want, writtenRemedy, ErrCorrupt)
	}
	return c.err
}

// Fail makes err (damage found outside the ring's words: the segment file
// truncated, say) the consumer's sticky error, unless it failed already,
// and returns the sticky error: every read returns it from now on, without
// touching the region.
func (c *Consumer) Fail(err error) error {
	if c.err == nil {
		c.err = err
	}
	return c.err
}

// Produced loads the producer position word as it is in the region:
// untrusted, unvalidated, and never used to read. A value that differs from
// an earlier load means a producer published (or, in an MPSC ring, reserved)
// since: the evidence of a producer's presence that a wait set samples
// (waitset's liveness check). It does not touch the consumer's state.
func (c *Consumer) Produced() uint64 { return c.prodPos.Load() }

// Err returns the sticky error that stopped the consumer, if any.
func (c *Consumer) Err() error { return c.err }

// Ring returns the ring this consumer reads.
func (c *Consumer) Ring() *Ring { return c.r }

// reloadProducer loads and validates the producer position and reports
// whether there is anything to read from c.pos. base is the released
// position (the consumer position in the region) when the cursor c.pos is
// past it: a batch's records read but not yet released (readBatch,
// SkipPadding); else c.pos. A holding consumer's is c.rel whatever base
// says; an overwrite ring's, the position resync loads. The producer
// position is validated against base, not only against the cursor: no
// producer is more than a capacity past the released position, so a batch
// reads at most a capacity, however much padding a damaged or hostile
// producer publishes.
func (c *Consumer) reloadProducer(base uint64) (bool, error) {
	var p uint64
	if c.r.overwrite {
		p = c.resync()
		base = c.pos
	} else {
		// Acquire: pairs with the SPSC producer's position store after its
		// records (TryWrite, WriteBatch, CommitN), which publishes them. An MPSC
		// frontier publishes nothing: each header load below pairs with its commit.
		p = c.prodPos.Load()
	}
	if c.hold {
		base = c.rel
	}
	// A header-commit ring's consumer may be past the published position
	// (span); it then has nothing to read by that position, depth 0.
	depth, _, ok := c.r.span(p, base)
	left := depth // bytes to read
	if read := c.pos - base; read != 0 && ok {
		// The cursor may not pass the producer position (but in a
		// header-commit ring, as the consumer position may).
		switch {
		case read <= depth:
			left = depth - read
		case c.r.polled:
			left = 0
		default:
			ok = false
		}
	}
	if !ok {
		c.err = corruptf(offProducerPos, "producer position %d is inconsistent with consumer position %d (capacity %d)", p, c.pos, c.r.capacity)
		return false, c.err
	}
	if !c.hold {
		// The depth from the cursor, as before the cursor was checked
		// against base: a batch's own records read are not counted (a
		// holding consumer's held bytes are: they occupy the ring).
		depth = left
	}
	if p != c.prodCached {
		c.prodCached = p
		c.r.raiseHighWater(depth)
	}
	c.r.lowerPressure(depth)
	return left != 0, nil
}

// resync moves the consumer of an overwrite ring to the released position,
// which producers move past the records they reclaim, and returns the
// producer position loaded with it: a consistent pair, the released
// position having read the same before and after (both move meanwhile, so
// a pair loaded once can look inconsistent on a healthy ring).
func (c *Consumer) resync() uint64 {
	pr, err := c.r.loadPositions(0)
	if err == nil {
		c.pos, c.stop = pr.c, pr.c
	}
	return pr.p // the caller reports damage
}

// Pending reports whether there are published records not yet read, loading
// the producer position if the cached one says there are none.
func (c *Consumer) Pending() (bool, error) {
	if c.err != nil {
		return false, c.err
	}
	if c.r.polled {
		// Acquire: pairs with the producer's store of a committed header (put, CommitN).
		return headerType(word(c.data, c.pos&c.mask).Load()) != TypeNone, nil
	}
	if c.pos != c.prodCached {
		return true, nil
	}
	return c.reloadProducer(c.pos)
}

// readBatch is ReadBatch for every ring and every case: options, held
// reads, damage, a nil callback.
func (c *Consumer) readBatch(max int, fn func(msg []byte)) (int, error) {
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
	base := start // the released position
	if c.hold {
		base = c.rel
	}
	polled := c.r.polled
	// The loop tests the field, not max: a callback ends the batch with
	// Stop. After the callback (an opaque call) both would be loaded from
	// memory again anyway.
	c.limit = max
	for n < c.limit {
		// Header commit: nothing the producer may have written lies a
		// capacity or more past the released position (base); there lie
		// this batch's own records (and held ones), read but not yet
		// released.
		avail := c.r.capacity - (c.pos - base)
		if polled && avail == 0 {
			break
		}
		if !polled {
			if c.pos == c.prodCached {
				if ok, err := c.reloadProducer(base); !ok || err != nil {
					break
				}
			}
			avail = c.prodCached - c.pos
		}
		i := c.pos & c.mask
		// Acquire: SPSC, the header lies below the producer position loaded
		// above, which published it; header commit, pairs with the producer's
		// header store (put, CommitN; flushPad for padding); MPSC, with the
		// committed header's store (TryWrite, putShared, CommitN) or the padding's.
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
		} else if c.err != nil {
			break // a duplicate's check found damage: the record stays unread
		}
		c.pos += size
	}
	if c.pos != start {
		end := c.pos
		if c.hold {
			// Release nothing delivered; only records skipped while
			// nothing delivered is held.
			c.releaseHeld(c.rel)
		} else {
			c.pos, c.stop = start, start
			c.release(start, end)
		}
		if polled {
			c.observeDepth(base, end, n == max)
		}
	}
	// A batch that took its maximum exactly at the last producer position
	// it loaded has not loaded it again, which is when pressure is lowered:
	// while the depth bit is raised, load it now, so that a consumer that
	// drained the ring and then stops or idles does not leave pressure
	// raised on an empty ring (one load of the pressure word per such batch).
	if n == max && !polled && c.pos == c.prodCached && c.err == nil &&
		word32(c.r.region, offPressure).Load()&PressureDepth != 0 {
		_, _ = c.reloadProducer(c.pos) // damage sets c.err, returned below
	}
	if n > 0 && !c.noCounters {
		add2(c.msgsOut, uint64(n), c.bytesOut, bytes)
	}
	return n, c.err
}

// Stop, called by a read callback, ends the ReadBatch (or TryRead) that
// called it after the record being delivered: that record is consumed
// (released and counted with the others), the rest stay in the ring.
// Outside a callback it does nothing that outlives the next read.
func (c *Consumer) Stop() { c.limit = 0 }

// Current describes the record a read callback is being given.
type Current struct {
	End  uint64 // the position just past the record
	Seq  uint64 // rings with sequences: its sequence; else 0
	Slot int    // MPSC: the producer slot in its header; else 0
	Mono int64  // rings with timestamps: its commit time, CLOCK_MONOTONIC ns; else 0
}

// Current returns what the record being delivered carries besides its
// payload. It is valid only when called from a read callback, about the
// record that callback was given; the read path pays nothing for it (the
// consumer's position still names the record while its callback runs, or,
// in an overwrite ring, the copy holds it; the fast path stores its end).
func (c *Consumer) Current() Current {
	if c.fast {
		// A plain ring's record carries no sequence, slot or time.
		return Current{End: c.end}
	}
	return c.current()
}

// current is Current for every ring but a plain one read by the fast path.
func (c *Consumer) current() Current {
	var cur Current
	var h uint64
	var rec []byte // the record from its header on
	if c.r.overwrite {
		// The copy: the extras, then the payload (no header). c.pos is
		// already past the record (releaseCopied).
		h, cur.End = c.hdr, c.pos
		if len(c.buf) < int(c.r.extra) {
			return cur
		}
		rec = c.buf[:c.r.extra]
		if c.r.seqs {
			cur.Seq = binary.LittleEndian.Uint64(rec[c.r.seqOff-HeaderSize:])
		}
		if c.r.ts {
			cur.Mono = int64(binary.LittleEndian.Uint64(rec[c.r.tsOff-HeaderSize:]))
		}
	} else {
		i := c.pos & c.mask
		// Acquire: the header the read path validated a moment ago; no
		// producer writes it until the consumer releases the record.
		h = word(c.data, i).Load()
		_, _, size, ok := c.r.decodeRecord(h, i, c.r.capacity)
		if !ok {
			return cur // not a callback's record: nothing to say
		}
		cur.End = c.pos + size
		rec = c.data[i : i+size]
		if c.r.seqs {
			cur.Seq = binary.LittleEndian.Uint64(rec[c.r.seqOff:])
		}
		if c.r.ts {
			cur.Mono = int64(binary.LittleEndian.Uint64(rec[c.r.tsOff:]))
		}
	}
	if c.mpsc {
		cur.Slot = headerSlot(h)
	}
	return cur
}
