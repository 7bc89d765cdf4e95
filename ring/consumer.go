package ring

import "sync/atomic"

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

	pos        uint64 // our position; the shared copy trails it between releases
	prodCached uint64 // last producer position loaded and validated

	err error // sticky: set on corruption
}

// NewConsumer returns the consumer side of r, resuming at the released
// consumer position. It fails with ErrCorrupt if the positions in the region
// are inconsistent.
func (r *Ring) NewConsumer() (*Consumer, error) {
	c := &Consumer{
		r:        r,
		data:     r.data,
		mask:     r.capacity - 1,
		prodPos:  word(r.region, offProducerPos),
		consPos:  word(r.region, offConsumerPos),
		msgsOut:  word(r.region, offMsgsOut),
		bytesOut: word(r.region, offBytesOut),
	}
	c.pos = c.consPos.Load()
	c.prodCached = c.pos
	if c.pos%Align != 0 {
		return nil, corruptf(offConsumerPos, "consumer position %d is not %d-aligned", c.pos, Align)
	}
	if _, err := c.reloadProducer(); err != nil {
		return nil, err
	}
	return c, nil
}

// Err returns the sticky error that stopped the consumer, if any.
func (c *Consumer) Err() error { return c.err }

// Ring returns the ring this consumer reads.
func (c *Consumer) Ring() *Ring { return c.r }

// reloadProducer loads and validates the producer position and reports
// whether there is anything to read.
func (c *Consumer) reloadProducer() (bool, error) {
	p := c.prodPos.Load()
	depth := p - c.pos
	if depth > c.r.capacity || p%Align != 0 {
		c.err = corruptf(offProducerPos, "producer position %d is inconsistent with consumer position %d (capacity %d)", p, c.pos, c.r.capacity)
		return false, c.err
	}
	if p != c.prodCached {
		c.prodCached = p
		c.r.raiseHighWater(depth)
	}
	return depth != 0, nil
}

// Pending reports whether there are published records not yet read, loading
// the producer position if the cached one says there are none.
func (c *Consumer) Pending() (bool, error) {
	if c.err != nil {
		return false, c.err
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
// delivered before the damage are released and counted.
func (c *Consumer) ReadBatch(max int, fn func(msg []byte)) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	var n int
	var bytes uint64
	start := c.pos
	for n < max {
		if c.pos == c.prodCached {
			if ok, err := c.reloadProducer(); !ok || err != nil {
				break
			}
		}
		i := c.pos & c.mask
		avail := c.prodCached - c.pos
		h := word(c.data, i).Load()
		length := headerLength(h)
		size := recordSize(length)
		if headerReserved(h) || size > avail || i+size > c.r.capacity {
			c.err = corruptf(ControlSize+i, "record header %#016x (length %d) does not fit the %d published bytes or the data area", h, length, avail)
			break
		}
		switch headerType(h) {
		case TypeData:
			if length > c.r.maxMessage {
				c.err = corruptf(ControlSize+i, "record length %d exceeds the maximum message size %d", length, c.r.maxMessage)
			} else {
				fn(c.data[i+HeaderSize : i+HeaderSize+length : i+HeaderSize+length])
				n++
				bytes += length
			}
		case TypePadding:
		default:
			c.err = corruptf(ControlSize+i, "record header %#016x has unknown type %d", h, headerType(h))
		}
		if c.err != nil {
			break
		}
		c.pos += size
	}
	if c.pos != start {
		publish(c.consPos, c.pos)
	}
	if n > 0 {
		publish(c.msgsOut, c.msgsOut.Load()+uint64(n))
		publish(c.bytesOut, c.bytesOut.Load()+bytes)
	}
	return n, c.err
}
