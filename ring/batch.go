// Batches: WriteBatch for both kinds (one position store in SPSC, one
// reservation per run in MPSC).

package ring

// reserveRun is WriteBatch's reservation in an MPSC ring: one intent and
// one compare-and-swap for the longest prefix of msgs whose records fit
// before the end of the data area (a run never wraps) and in the room the
// cached consumer position shows (loaded again once if it shows too
// little). It returns the run's position and length in records; fewer
// than two (a record that must wrap, is too large, or finds no room, or a
// damaged ring) leave the next message to TryWrite, which decides.
func (p *Producer) reserveRun(msgs [][]byte) (uint64, int) {
	capacity := p.r.capacity
	reloaded := false
	for {
		// Acquire: the MPSC frontier publishes nothing (record headers do); this is
		// the value our compare-and-swap advances from.
		pos := p.prodPos.Load()
		tail := capacity - pos&p.mask
		k, total, forRoom := 0, uint64(0), false
		for _, m := range msgs {
			n := uint64(len(m))
			if n > p.r.maxMessage {
				break
			}
			need := p.r.dataSize(n)
			if total+need > tail {
				break
			}
			if pos-p.consCached > capacity || !p.fastFits(pos+total+need-p.consCached) {
				forRoom = true
				break
			}
			total += need
			k++
		}
		if forRoom && !reloaded {
			reloaded = true
			c := p.consPos.Load() // acquire: as in takeShared
			if _, _, ok := p.r.span(pos, c); ok {
				p.consCached = c
			}
			continue
		}
		if k < 2 {
			return 0, 0
		}
		if ok, err := p.takeShared(pos, total); err != nil {
			return 0, 0
		} else if ok {
			return pos, k
		}
	}
}

// writeBatchShared is WriteBatch for MPSC: a run of records per
// reservation (reserveRun), each record written, counted and committed as
// TryWrite writes one (pending header, payload, counters, committed
// header, in that order), so that a consumer, its recovery after the
// producer's death, and a restarted producer resuming from the counters
// meet in a run cut short what they meet after single writes
// (docs/layout.md, "Writing").
func (p *Producer) writeBatchShared(msgs [][]byte) (int, error) {
	var n int
	for n < len(msgs) {
		pos, k := p.reserveRun(msgs[n:])
		if k == 0 {
			if err := p.TryWrite(msgs[n]); err != nil {
				if n > 0 && err == ErrFull {
					err = nil
				}
				return n, err
			}
			n++
			if p.afterRun != nil {
				p.afterRun(1)
			}
			continue
		}
		for _, m := range msgs[n : n+k] {
			publish(word(p.data, pos&p.mask), makeHeader(uint32(len(m)), p.slot, TypePending))
			if p.hook != nil {
				p.hook(stepPending)
			}
			p.putShared(pos, m)
			pos += p.r.dataSize(uint64(len(m)))
		}
		n += k
		if p.afterRun != nil {
			p.afterRun(k)
		}
	}
	return n, nil
}

// WriteBatch copies as many of msgs as fit, in order, and publishes them
// with one position store (SPSC; a header-commit ring's producer also
// stores its position each time the batch finds the ring full, before it
// loads the consumer's), or reserves them with one
// compare-and-swap per run that fits before the end of the data area
// (MPSC; each record is committed as it is written, so a consumer may read
// the first before the last is written, and other producers' records may
// come between runs). It returns how many were written. If none fit it
// returns 0, ErrFull; if msgs[n] is too large it returns n, ErrTooLarge
// (the first n are written).
func (p *Producer) WriteBatch(msgs [][]byte) (int, error) {
	if p.claimed {
		return 0, ErrClaimPending
	}
	if p.mpsc {
		return p.writeBatchShared(msgs)
	}
	var n int
	var bytes uint64
	var err error
	if p.fast && p.err == nil {
		// A plain ring (TryWrite's fast path, a record at a time): what
		// fits before the end of the data area and within room by the
		// cached consumer position; the rest, if any, as below.
		pos, room := p.pos, p.room()
		for _, m := range msgs {
			ln := uint64(len(m))
			i := pos & p.mask
			need := (HeaderSize + ln + Align - 1) &^ (Align - 1)
			if ln > p.r.maxMessage || need > p.r.capacity-i || pos+need-p.consCached > room {
				break
			}
			// need <= capacity-i: the payload and the header lie inside
			// the data area (dataBytes, dataWord: no bounds checks).
			if dst := dataBytes(p.data, i+HeaderSize, ln); smallCopy(ln) {
				copySmall(dst, m) // inline, no memmove call
			} else {
				copy(dst, m)
			}
			publish(dataWord(p.data, i), makeHeader(uint32(ln), 0, TypeData))
			pos += need
			n++
			bytes += ln
		}
		p.pos = pos
	}
	for _, m := range msgs[n:] {
		var pos uint64
		pos, err = p.reserve(uint64(len(m)))
		if err != nil {
			break
		}
		p.put(pos, m)
		if p.r.seqs {
			p.seq++
		}
		n++
		bytes += uint64(len(m))
	}
	if n > 0 {
		publish(p.prodPos, p.pos)
		if p.hook != nil {
			p.hook(stepCommit)
		}
		p.count(uint64(n), bytes)
		if p.r.seqs {
			p.storeDone(p.seq - 1)
		}
		if err == ErrFull {
			err = nil
		}
	}
	return n, err
}
