// The one-record read of a plain SPSC ring (Consumer.fast): ReadBatch's
// fast path for one record, without the batch's bookkeeping.

package ring

// TryRead delivers at most one record to fn and releases its space: what
// ReadBatch(1, fn) does, with the same checks, stores and errors. It
// returns false if the ring is empty (or damaged: the error says).
//
// A plain ring's read (Consumer.fast) is done here rather than by
// ReadBatch: a read of one message, which finds the ring drained at each
// call when the producer writes one at a time, repeats the batch's set-up
// (its limit, counts and loop bound) on every call, about half of
// ReadBatch's cost for one message (issue 17, docs/benchmarks.md). Per
// call it does: the producer position's load and validation when the
// consumer has read all it published (against the position the call began
// at, as ReadBatch), the high watermark's and pressure word's loads, the
// header's load and checks, the callback, the position store (every call
// that delivered or skipped something: the producer must see the room),
// the pressure re-check of a read that ends at the producer position, and
// the counters. Keep it free of calls other than fn.
func (c *Consumer) TryRead(fn func(msg []byte)) (bool, error) {
	if !c.fast || c.err != nil || fn == nil {
		n, err := c.readBatch(1, fn)
		return n == 1, err
	}
	start := c.pos
	pos := start
	for {
		i := pos & c.mask
		var left uint64 // the bytes from pos to c.stop, as in ReadBatch
		if pos == c.prodCached {
			// Caught up (c.stop is pos too): ReadBatch's refill, the
			// common case of reads of one, tested first. Acquire: pairs
			// with the producer's position store after its records
			// (TryWrite, WriteBatch), which publishes them. Validated
			// against pos and against start (the released position): a
			// call reads at most a capacity.
			p := c.prodPos.Load()
			left = p - pos
			if p%Align != 0 || left > c.mask+1 || p-start > c.mask+1 {
				c.badProducer(p, pos)
				break
			}
			if left == 0 {
				// Empty. The pressure word: raised by producers'
				// compare-and-swap, a value.
				if c.pressure.Load()&PressureDepth != 0 {
					c.r.lowerPressure(0)
				}
				break
			}
			c.prodCached = p
			// The high watermark: raised by the consumer's
			// compare-and-swap, reset by any process; a value.
			if left > c.highWater.Load() {
				c.r.raiseHighWater(left)
			}
			if c.pressure.Load()&PressureDepth != 0 {
				c.r.lowerPressure(left)
			}
			// Validated: 0 < left <= capacity; and i < capacity.
			if tail := c.mask + 1 - i; tail < left {
				left = tail
			}
			c.stop = pos + left
		} else if left = c.stop - pos; left-1 > c.mask {
			// None left before c.stop (or more than a capacity: a
			// position set outside the fast path, as in ReadBatch), but
			// published bytes are left: at the start of the data area,
			// after its end (0 < prodCached-pos <= capacity: validated).
			left = min(c.prodCached-pos, c.mask+1-i)
			c.stop = pos + left
		}
		// Acquire: the header lies below the producer position loaded,
		// which published it. i is 8-aligned and below the capacity
		// (dataWord). The checks are ReadBatch's.
		h := dataWord(c.data, i).Load()
		length := headerLength(h)
		size := (HeaderSize + length + Align - 1) &^ (Align - 1)
		if t := h >> 48; t == TypeData && size <= left && length <= c.maxMsg {
			j := i + HeaderSize
			pos += size
			c.end = pos
			// size <= left <= capacity-i: the payload lies inside
			// the data area (dataBytes: no bounds check).
			fn(dataBytes(c.data, j, length))
			c.pos = pos
			// Release: every load of the record is done before it.
			publish(c.consPos, pos)
			if !c.noCounters {
				add2(c.msgsOut, 1, c.bytesOut, length)
			}
			// As ReadBatch after a batch that took its maximum exactly
			// at the producer position it loaded.
			if c.pressure.Load()&PressureDepth != 0 && pos == c.prodCached {
				c.refill(pos, pos&c.mask) // damage sets c.err
				return true, c.err
			}
			return true, nil
		} else if t != TypePadding || size > left {
			c.badRecord(h, i, c.prodCached-pos)
			break
		}
		pos += size
	}
	if pos != start {
		// Padding skipped before the ring ran dry or the damage.
		c.pos = pos
		publish(c.consPos, pos)
	}
	return false, c.err
}
