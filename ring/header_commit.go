// Header commit (FlagHeaderCommit, SPSC): the consumer finds records by
// their headers. The producer keeps the next header zero, defers a wrap's
// padding, and a restarted producer resumes after what its predecessor
// committed; the consumer samples the depth.

package ring

// resumeCommitted finds where a header-commit ring's records really end.
// A predecessor killed after committing a record (its header) but before
// storing the producer position left records the consumer may already
// have read past the published position: resume after them, or the new
// producer would overwrite a record not yet read, or find the consumer
// ahead of it. The records form a chain from the consumer position (or
// the published one, if later) that ends at a zero header: every commit
// zeroes the next header word first.
//
// The chain holds at most capacity-8 bytes from c (the producer keeps the
// word at its position free), so it ends at a zero header within that. pr
// is the pair of positions the producer resumes from (loadPositions).
func (p *Producer) resumeCommitted(pr positions) error {
	c, pos := pr.c, pr.p
	if pr.ahead { // the consumer read records past the published position
		pos = c
	}
	for {
		i := pos & p.mask
		// Acquire: pairs with the predecessor's header stores (put, flushPad),
		// all made before it died (we hold its role).
		h := word(p.data, i).Load()
		if h == 0 {
			break
		}
		var room uint64 // the chain's bytes left: it ends within capacity-8 of c
		if d := pos - c; d < p.r.capacity-Align {
			room = p.r.capacity - Align - d
		}
		_, _, size, ok := p.r.decodeRecord(h, i, room)
		if !ok {
			p.err = corruptf(p.r.dataOff+i, "record header %#016x at position %d, past the producer position, does not fit", h, pos)
			return p.err
		}
		pos += size
	}
	if pos != p.pos {
		p.pos = pos
		publish(p.prodPos, pos)
	}
	return nil
}

// flushPad writes the wrap padding reserve deferred (header-commit rings),
// once the record after it is committed.
func (p *Producer) flushPad() {
	if p.padSize != 0 {
		publish(word(p.data, p.padPos&p.mask), makeHeader(uint32(p.padSize-HeaderSize), 0, TypePadding))
		p.padSize = 0
	}
}

// zeroNext clears, in a header-commit ring, the word at next, the header of
// the record after the one about to be committed: the consumer reads it as
// soon as it has read this one, and free space holds whatever earlier laps,
// aborted claims or short commits left there. It lies in free space (limit
// keeps a word of it).
func (p *Producer) zeroNext(next uint64) {
	if p.r.polled {
		publish(word(p.data, next&p.mask), 0)
	}
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
	// The pressure word: producers raise it by compare-and-swap (a value).
	if (!full || c.fullBatches%64 != 1) && word32(c.r.region, offPressure).Load() == 0 {
		c.r.raiseHighWater(end - start)
		return
	}
	p := c.prodPos.Load() // acquire: pairs with the producer's position store, as in reloadProducer
	if _, ahead, ok := c.r.span(p, end); !ok || ahead {
		return // moving or damaged: the next read finds out
	}
	c.prodCached = p
	c.r.raiseHighWater(p - start)
	depth := p - end
	if c.hold {
		depth = p - c.rel // held bytes are in the depth (start is c.rel)
	}
	c.r.lowerPressure(depth)
}
