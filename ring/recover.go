// Recovery: the consumer's view of an uncommitted MPSC reservation
// (Blocked) and skipping it when no live producer owns it (Recover).

package ring

// Blocked reports whether the consumer is stopped, in an MPSC ring, at a
// reservation that is published (below the producer position) but not yet
// committed. Recover decides whether its owner is dead.
func (c *Consumer) Blocked() bool {
	if !c.mpsc || c.err != nil {
		return false
	}
	if c.pos == c.prodCached || c.r.overwrite {
		if ok, _ := c.reloadProducer(c.pos); !ok {
			return false
		}
	}
	// Acquire: pairs with the producers' header stores (pending or committed).
	t := headerType(word(c.data, c.pos&c.mask).Load())
	return t == TypeNone || t == TypePending
}

// Recover examines the uncommitted reservation the consumer is blocked at
// (see Blocked) and, if no live producer can own it, turns it into padding
// and counts it lost. It asks the ring's Liveness (AttachWithLiveness;
// without one it returns ErrInvalid) whether the holder of a slot is alive,
// only for slots whose intent covers the reservation, so a
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
func (c *Consumer) Recover() (bool, error) {
	if c.r.live == nil {
		return false, errNoLiveness
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
	// Acquire: pairs with the owner's pending or committed header store
	// (reserveShared, TryWrite, putShared, CommitN, Abort).
	h := hw.Load()
	switch headerType(h) {
	case TypePending:
		slot, size, ok := c.r.decodePending(h, i, P-S)
		if !ok {
			c.err = corruptf(c.r.dataOff+i, "pending record header %#016x is out of range", h)
			return false, c.err
		}
		ipos, ilen, err := c.intent(slot)
		if err != nil {
			return false, err
		}
		if ilen <= capacity+c.r.maxMessage+2*HeaderSize && S-ipos < ilen && c.r.live.SlotAlive(slot) {
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
				if c.r.live.SlotAlive(k) {
					return false, nil
				}
				lim = min(lim, ipos+ilen-S)
				owner, ownerLim = k, ipos+ilen-S
			} else if d := ipos - S; d > 0 && d < lim {
				lim = d
			}
		}
		for j := uint64(Align); j < lim; j += Align {
			// Acquire: pairs with any producer's first header store there.
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

// SkipPadding releases padding records at the consumer position without
// delivering anything, and reports whether it stopped at a blocked
// reservation (Doctor's repair: it must not consume committed messages).
func (c *Consumer) SkipPadding() bool {
	start := c.pos
	for {
		if c.pos == c.prodCached {
			if ok, err := c.reloadProducer(start); !ok || err != nil {
				break
			}
		}
		i := c.pos & c.mask
		t, _, size, ok := c.r.decodeRecord(word(c.data, i).Load(), i, c.prodCached-c.pos)
		if !ok || t != TypePadding {
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
