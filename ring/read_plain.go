// The read path of a plain SPSC ring (Consumer.fast): no drop-oldest,
// sequences, timestamps, header commit, MPSC or held reads. Every other
// ring, and every case off the common path (damage, a nil callback), is
// readBatch's (consumer.go).

package ring

import "fmt"

// setFast recomputes c.fast; called when the consumer is made and when it
// starts holding its reads.
func (c *Consumer) setFast() { c.fast = c.plain && !c.hold }

// ReadBatch delivers up to max records to fn, in order, then releases all
// their space with one position store. It returns the number delivered; 0
// with a nil error means the ring is empty (or, in an overwrite ring, that
// producers published or reclaimed a capacity's worth of records while
// the call read none: it returns rather than loop; call again). On ErrCorrupt the records
// delivered before the damage are released and counted. A nil fn returns
// ErrInvalid. fn may call Stop to end the batch after the record it was
// given, and Current to learn that record's sequence, slot, time and end.
//
// A plain ring's read (Consumer.fast) is done here: the producer position
// loaded and validated when the consumer has caught up with the last one
// (as readBatch does), each record's header checked as decodeRecord checks
// it (a data or padding record, a length within the maximum message, a size
// within what is published and the data area), the callback, and, once per
// batch, the position store and the counters. Damage found in a header is
// reported by badRecord, with readBatch's error. Keep the loop free of calls
// other than fn: its cost is issue 17's (docs/benchmarks.md).
func (c *Consumer) ReadBatch(max int, fn func(msg []byte)) (int, error) {
	if !c.fast || c.err != nil || fn == nil {
		return c.readBatch(max, fn)
	}
	var n int
	var bytes uint64
	start := c.pos
	// The loop tests the field, not max: a callback ends the batch with
	// Stop (as in readBatch).
	c.limit = max
	for n < c.limit {
		pos := c.pos
		// left: the bytes from pos to c.stop, the end of what the last
		// producer position loaded published or of the data area,
		// whichever comes first. None left (or more than a capacity: a
		// consumer that has not read yet, c.stop 0): look again.
		left := c.stop - pos
		i := pos & c.mask
		if left-1 > c.mask {
			left = c.prodCached - pos
			if left == 0 {
				// refill, written out: it is on the path of every read
				// that finds the ring drained (TryRead's of one message;
				// calling it measured 20 instructions more). Acquire:
				// pairs with the producer's position store after its
				// records (TryWrite, WriteBatch), which publishes them.
				// Validated against start, the released position (the
				// consumer position in the region until this call's
				// release), not only against pos: a producer is never more
				// than a capacity past it, so one call reads at most a
				// capacity, however much padding a damaged or hostile
				// producer publishes. left > capacity: p below pos.
				p := c.prodPos.Load()
				left = p - pos
				if p%Align != 0 || left > c.mask+1 || p-start > c.mask+1 {
					c.badProducer(p, pos)
					break
				}
				if left != 0 {
					c.prodCached = p
					// The high watermark: raised by the consumer's
					// compare-and-swap, reset by any process; a value.
					if left > c.highWater.Load() {
						c.r.raiseHighWater(left)
					}
				}
				// The pressure word: raised by producers'
				// compare-and-swap, a value.
				if c.pressure.Load()&PressureDepth != 0 {
					c.r.lowerPressure(left)
				}
				if left == 0 {
					break
				}
			}
			// Validated (above, or by reloadProducer): 0 < left <=
			// capacity; and i < capacity.
			if tail := c.mask + 1 - i; tail < left {
				left = tail
			}
			c.stop = pos + left
		}
		// Acquire: the header lies below the producer position loaded
		// above, which published it (as in readBatch). i is 8-aligned
		// (every record's size is) and below the capacity: dataWord's
		// index, with no bounds check.
		h := dataWord(c.data, i).Load()
		length := headerLength(h)
		size := (HeaderSize + length + Align - 1) &^ (Align - 1) // no extras
		// decodeRecord's test for a plain ring: h>>48 is the type with
		// the reserved bits above it; a padding record's length is any
		// 32-bit value; size <= left: the record lies within what is
		// published and within the data area.
		if t := h >> 48; t == TypeData && size <= left && length <= c.maxMsg {
			j := i + HeaderSize
			c.end = pos + size
			// size <= left <= capacity-i: the payload lies inside the
			// data area (dataBytes: no bounds check).
			fn(dataBytes(c.data, j, length))
			n++
			bytes += length
		} else if t != TypePadding || size > left {
			c.badRecord(h, i, c.prodCached-pos)
			break
		}
		c.pos = pos + size
	}
	if c.pos != start {
		// release(start, c.pos) for a plain ring. Release: every load of
		// the records released is done before it.
		publish(c.consPos, c.pos)
	}
	// As in readBatch: a batch that took its maximum exactly at the last
	// producer position it loaded looks at the pressure word, so that a
	// consumer that drained the ring does not leave pressure raised.
	if c.pressure.Load()&PressureDepth != 0 && n == max && c.pos == c.prodCached && c.err == nil {
		c.refill(c.pos, c.pos&c.mask) // damage sets c.err, returned below
	}
	if n > 0 && !c.noCounters {
		add2(c.msgsOut, uint64(n), c.bytesOut, bytes)
	}
	return n, c.err
}

// refill is the fast path's look at what there is to read from pos (data
// index i), when it has read up to c.stop: if it has caught up with the
// last producer position loaded, reloadProducer's work: it loads the
// producer position, validates it against pos and against c.pos, the
// released position (8-aligned, at most a capacity ahead of both: span for
// a ring without header commit; pos is 8-aligned, as every record's size
// is), raises the high watermark if the depth passed
// it and lowers pressure if the depth bit is set. Then it sets c.stop to the
// end of what is published or of the data area, whichever comes first, and
// returns the bytes from pos to it: 0 when there is nothing to read or the
// producer position is damaged (c.err).
func (c *Consumer) refill(pos, i uint64) uint64 {
	left := c.prodCached - pos
	if left == 0 {
		// Acquire: pairs with the producer's position store after its
		// records (TryWrite, WriteBatch), which publishes them.
		// Validated against c.pos, the released position (Next moves
		// only its caller's cursor, pos), as ReadBatch validates it
		// against its start: a pull-style batch reads at most a capacity.
		p := c.prodPos.Load()
		left = p - pos
		if p%Align != 0 || left > c.mask+1 || p-c.pos > c.mask+1 {
			c.badProducer(p, pos)
			return 0
		}
		if left != 0 {
			c.prodCached = p
			// The high watermark: raised by the consumer's
			// compare-and-swap, reset by any process; a value.
			if left > c.highWater.Load() {
				c.r.raiseHighWater(left)
			}
		}
		// The pressure word: raised by producers' compare-and-swap, a value.
		if c.pressure.Load()&PressureDepth != 0 {
			c.r.lowerPressure(left)
		}
		if left == 0 {
			return 0
		}
	}
	// Validated (above, or by reloadProducer): 0 < left <= capacity; and
	// i < capacity.
	if tail := c.mask + 1 - i; tail < left {
		left = tail
	}
	c.stop = pos + left
	return left
}

// badProducer records a producer position p that refill found
// inconsistent with the consumer's read position pos, with
// reloadProducer's error.
func (c *Consumer) badProducer(p, pos uint64) {
	c.err = corruptf(offProducerPos, "producer position %d is inconsistent with consumer position %d (capacity %d)", p, pos, c.r.capacity)
}

// badRecord records the header h at data index i, which the fast path
// found not to be a data or padding record fitting the avail published
// bytes, with readBatch's error for it.
func (c *Consumer) badRecord(h, i, avail uint64) {
	switch t := headerType(h); {
	case t == TypeNone && h != 0:
		c.err = corruptf(c.r.dataOff+i, "record header %#016x has type 0 but is not zero", h)
	case t == TypeNone || t == TypePending:
		c.err = corruptf(c.r.dataOff+i, "record header %#016x is not committed in an spsc ring", h)
	default:
		t, length, _, _ := c.r.decodeRecord(h, i, avail)
		c.err = corruptf(c.r.dataOff+i, "record header %#016x (type %d, length %d) is not a data or padding record that fits the %d published bytes, the data area and the maximum message size %d", h, t, length, avail, c.r.maxMessage)
	}
}

// Fast reports whether the consumer reads through the fast path: a plain
// SPSC ring (no drop-oldest, sequences, timestamps or header commit), not
// holding its reads, undamaged so far. Next and EndBatch are for such a
// consumer only.
func (c *Consumer) Fast() bool { return c.fast && c.err == nil }

// Next is the pull-style read of a plain ring (Fast), for package ipc's
// Batch, which hands records to a range loop without a callback of ours
// per record: it returns the payload of the first data record at or after
// pos, skipping padding, and next, the position just past it; ok false
// when there is none (next is then past the padding skipped) or when the
// ring is damaged (Err says; next is where the damage is). pos is the
// consumer's Position or a next that Next returned. Each record is checked
// as ReadBatch's fast path checks it. Next releases and counts nothing,
// and moves no position but the producer position it caches: EndBatch does
// that for all that was read, and the payloads stay valid until it does.
// On a consumer that is not fast (a ring with options, held reads) it
// returns nothing: ok false, next pos.
func (c *Consumer) Next(pos uint64) (msg []byte, next uint64, ok bool) {
	if !c.fast {
		return nil, pos, false
	}
	for {
		left := c.stop - pos // as in ReadBatch
		i := pos & c.mask
		if left-1 > c.mask {
			if left = c.refill(pos, i); left == 0 {
				return nil, pos, false // drained, or damage (c.err)
			}
		}
		// Acquire: as in ReadBatch.
		h := dataWord(c.data, i).Load()
		length := headerLength(h)
		size := (HeaderSize + length + Align - 1) &^ (Align - 1)
		t := h >> 48
		if t == TypeData && size <= left && length <= c.maxMsg {
			// The slice expression's bounds check stays: pos is the
			// caller's, so left (c.stop-pos) is not known to end within
			// the data area (a pos before the span c.stop was set for),
			// and a wrong pos must panic rather than read past it.
			j := i + HeaderSize
			return c.data[j : j+length : j+length], pos + size, true
		}
		if t != TypePadding || size > left {
			c.badRecord(h, i, c.prodCached-pos)
			return nil, pos, false
		}
		pos += size
	}
}

// EndBatch ends a pull-style read (Next) begun at the consumer's Position:
// it releases everything before next (the last position Next returned)
// with one position store, counts the n messages of bytes payload bytes
// read, and, when full (the batch took the most it would), looks at
// pressure as ReadBatch does after a batch that took its maximum. It
// returns Err, or ErrInvalid, changing nothing, on a consumer that is not
// fast or for a next that is not a position Next could have returned
// (8-aligned, from the consumer's Position to the producer position last
// validated).
func (c *Consumer) EndBatch(next uint64, n int, bytes uint64, full bool) error {
	if !c.fast {
		return errNotFast
	}
	// next is the caller's: it must lie between the released position and
	// the producer position Next validated, 8-aligned, or storing it would
	// hand the producer room it has not been given (or take back room
	// released). Once per batch.
	if next-c.pos > c.prodCached-c.pos || next%Align != 0 {
		return fmt.Errorf("ring: EndBatch: position %d is not one Next returned (released %d, published %d); pass the last next Next returned: %w", next, c.pos, c.prodCached, ErrInvalid)
	}
	// c.stop = next: the next read computes its span from next (c.stop
	// was set for a position of the caller's, which need not be a record
	// boundary the fast path's spans start at).
	c.stop = next
	if next != c.pos {
		c.pos = next
		// Release: every load of the records released is done before it.
		publish(c.consPos, next)
	}
	if c.pressure.Load()&PressureDepth != 0 && full && next == c.prodCached && c.err == nil {
		c.refill(next, next&c.mask) // damage sets c.err
	}
	if n > 0 && !c.noCounters {
		add2(c.msgsOut, uint64(n), c.bytesOut, bytes)
	}
	return c.err
}
