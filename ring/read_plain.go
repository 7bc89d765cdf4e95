// The read path of a plain SPSC ring (Consumer.fast): no drop-oldest,
// sequences, timestamps, header commit, MPSC or held reads. Every other
// ring, and every case off the common path (damage, a nil callback), is
// readBatch's (consumer.go).

package ring

// setFast recomputes c.fast; called when the consumer is made and when it
// starts holding its reads.
func (c *Consumer) setFast() { c.fast = c.plain && !c.hold }

// ReadBatch delivers up to max records to fn, in order, then releases all
// their space with one position store. It returns the number delivered; 0
// with a nil error means the ring is empty. On ErrCorrupt the records
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
				// reloadPlain, written out: it is on the path of every
				// read that finds the ring drained (TryRead's of one
				// message). Acquire: pairs with the producer's position
				// store after its records (TryWrite, WriteBatch), which
				// publishes them.
				p := c.prodPos.Load()
				left = p - pos
				if p%Align != 0 || left > c.mask+1 {
					c.badProducer(p)
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
			fn(c.data[j : j+length : j+length])
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
		c.reloadPlain() // damage sets c.err, returned below
	}
	if n > 0 && !c.noCounters {
		add2(c.msgsOut, uint64(n), c.bytesOut, bytes)
	}
	return n, c.err
}

// reloadPlain is reloadProducer for the fast path: it loads the producer
// position, validates it against the consumer's (8-aligned, at most a
// capacity ahead: span for a ring without header commit; the consumer's
// own position is 8-aligned, as every record's size is), raises the high
// watermark if the depth passed it and lowers pressure if the depth bit is
// set. It reports whether there is anything to read; damage sets c.err.
func (c *Consumer) reloadPlain() bool {
	// Acquire: pairs with the producer's position store after its records
	// (TryWrite, WriteBatch), which publishes them.
	p := c.prodPos.Load()
	depth := p - c.pos
	if p%Align != 0 || depth > c.r.capacity {
		c.badProducer(p)
		return false
	}
	if p != c.prodCached {
		c.prodCached = p
		// The high watermark: raised by the consumer's compare-and-swap,
		// reset by any process; a value.
		if depth > c.highWater.Load() {
			c.r.raiseHighWater(depth)
		}
	}
	// The pressure word: raised by producers' compare-and-swap, a value.
	if c.pressure.Load()&PressureDepth != 0 {
		c.r.lowerPressure(depth)
	}
	return depth != 0
}

// badProducer records a producer position that reloadPlain found
// inconsistent, with reloadProducer's error.
func (c *Consumer) badProducer(p uint64) {
	c.err = corruptf(offProducerPos, "producer position %d is inconsistent with consumer position %d (capacity %d)", p, c.pos, c.r.capacity)
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
