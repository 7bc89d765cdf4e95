package ring

import "runtime"

// Drop-oldest in an MPSC ring (layout version 2).
//
// In an MPSC ring the consumer releases space by zeroing it and then
// publishing its position: producers detect an unwritten reservation by its
// zero header, so space must be zero before a producer can reserve it. A
// producer that reclaims the oldest records must do the same, and two
// parties zeroing and moving one position would race: a slow zeroer could
// clear bytes a producer has already reserved past the other's release. So
// in these rings every move of the consumer position, by the consumer or by
// a reclaiming producer, happens under the release lock:
//
//  1. take the lock: compare-and-swap offReleaseLock from 0 to your ID
//     (releaseByConsumer, or slot+1);
//  2. the consumer position c is now stable; choose the end t of the range
//     to release (the consumer: the record it read; a producer: past the
//     oldest committed records until its record fits);
//  3. store t in offZeroEnd, zero [c, t), store t in offConsumerPos;
//  4. store 0 in offReleaseLock.
//
// Whoever takes the lock first finishes a release a dead holder left: if the
// zeroing mark is ahead of the consumer position, [c, zero end) is zeroed
// and the position moved there (zeroing is idempotent, and the holder being
// dead, nobody else writes there). A holder is displaced only when the
// ring's Liveness (given to AttachWithLiveness) says it is dead; without one
// every holder counts as alive and a waiter gives up instead.
//
// The consumer copies a record out before it takes the lock, and delivers
// the copy only if, holding the lock, it finds the consumer position still
// at the record: then nobody has zeroed or reused the record's bytes (that
// needs the position past them), and the copy is whole. Otherwise a
// producer reclaimed the record (and counted it dropped); the read is
// discarded and counted in lapped. The lock is held only for a bounded
// zeroing, never across a wait or a callback.

// Holders of the release lock other than producer slots (slot k is k+1).
const releaseByConsumer = 1 << 32

// releaseSpins is how many times a party polls a held release lock, yielding
// the processor between polls, before it asks whether the holder is alive
// (a producer then gives up on this attempt; the consumer reads later).
const releaseSpins = 256

// lockRelease takes the release lock for id, finishing the release of a dead
// holder. It returns false if a live holder kept the lock through the
// polling budget, or an error if the region is damaged.
func (r *Ring) lockRelease(id uint64) (bool, error) {
	lock := word(r.region, offReleaseLock)
	for i := 0; ; i++ {
		// Acquire: pairs with the previous holder's unlockRelease store; the
		// compare-and-swap that takes the lock is the acquire its zeroing needs.
		h := lock.Load()
		if h == 0 {
			if lock.CompareAndSwap(0, id) {
				return true, r.finishRelease()
			}
			continue
		}
		if h == id {
			// Our own ID: a predecessor in our role (a consumer, or a
			// producer of our slot) died holding it; we hold the role now.
			return true, r.finishRelease()
		}
		if i < releaseSpins {
			runtime.Gosched()
			continue
		}
		if r.holderAlive(h) {
			return false, nil
		}
		// Dead, or a value no holder writes (damage): take it over.
		if lock.CompareAndSwap(h, id) {
			return true, r.finishRelease()
		}
	}
}

// holderAlive reports whether the release lock's holder h (the word's
// value) is alive: the consumer, or producer slot h-1, asked of the ring's
// Liveness. Without one every holder is alive. A value no holder writes is
// damage: not alive, so that it is taken over.
func (r *Ring) holderAlive(h uint64) bool {
	switch {
	case h == releaseByConsumer:
		return r.live == nil || r.live.ConsumerAlive()
	case h-1 < uint64(r.slots):
		return r.live == nil || r.live.SlotAlive(int(h-1))
	}
	return false
}

// unlockRelease hands the release lock back.
func (r *Ring) unlockRelease() { publish(word(r.region, offReleaseLock), 0) }

// finishRelease completes a release the previous holder began: its zeroing
// mark ahead of the consumer position.
func (r *Ring) finishRelease() error {
	// Acquire: pairs with releaseRange's store of the mark (a release
	// under the lock that a holder may have died in). The lock holds the
	// consumer position still; the common case, no release left
	// unfinished, costs these two loads.
	ze := word(r.region, offZeroEnd).Load()
	if ze == word(r.region, offConsumerPos).Load() {
		return nil
	}
	pr, err := r.loadPositions(0)
	if err != nil {
		return err
	}
	if ze-pr.c > pr.depth || ze%Align != 0 {
		return corruptf(offZeroEnd, "zeroing mark %d is inconsistent with consumer position %d and producer position %d (capacity %d)", ze, pr.c, pr.p, r.capacity)
	}
	r.releaseRange(pr.c, ze)
	return nil
}

// releaseRange zeroes [from, to) and moves the consumer position to its end.
// The caller holds the release lock and from is the consumer position.
func (r *Ring) releaseRange(from, to uint64) {
	publish(word(r.region, offZeroEnd), to)
	if r.hook != nil {
		r.hook(stepReleaseMarked)
	}
	mask := r.capacity - 1
	i, n := from&mask, to-from
	if first := min(n, r.capacity-i); first > 0 {
		clear(r.data[i : i+first])
		clear(r.data[:n-first])
	}
	publish(word(r.region, offConsumerPos), to)
}

// tryWriteOverwriteShared is TryWriteOverwrite for an MPSC ring: it writes
// if there is room, else reclaims the oldest committed records under the
// release lock and tries again. Other producers may take the room first, so
// it tries a few times; it gives up with ErrFull (and counts the message
// dropped) if the oldest record is still being written by a live producer,
// if another live party keeps the lock, or if the message cannot fit at all.
func (p *Producer) tryWriteOverwriteShared(msg []byte) (int, error) {
	dropped := 0
	for attempt := 0; attempt < 8; attempt++ {
		err := p.TryWrite(msg)
		if err != ErrFull {
			return dropped, err
		}
		k, err := p.reclaimShared(uint64(len(msg)))
		dropped += k
		if err != nil {
			return dropped, err
		}
		if k == 0 {
			runtime.Gosched()
		}
	}
	p.AddDrops(1)
	return dropped, ErrFull
}

// reclaimShared releases the oldest committed records, under the release
// lock, until a record with an n-byte payload would fit at the frontier as
// it is now. It returns how many messages it dropped (0 if it could not
// take the lock or the oldest record is not committed).
func (p *Producer) reclaimShared(n uint64) (int, error) {
	// Nothing to reclaim while the oldest record is not committed (being
	// written, or a dead producer's, until the consumer's recovery skips
	// it) and no release is under way (the zeroing mark is at the
	// position; else a dead holder's release may need finishing): do not
	// take the lock then. Producers taking it again and again for nothing
	// keep the consumer from the lock its recovery needs.
	// Acquire, without the lock (a hint only): pairs with releaseRange's or
	// the consumer's store of the position.
	c := p.consPos.Load()
	if c%Align != 0 {
		p.err = corruptf(offConsumerPos, "consumer position %d is not %d-aligned", c, Align)
		return 0, p.err
	}
	// Acquire: pairs with the oldest record's committed header store.
	if h := word(p.data, c&p.mask).Load(); (h == 0 || headerType(h) == TypePending) &&
		word(p.r.region, offZeroEnd).Load() == c {
		return 0, nil // (anything else but a committed record is damage, found under the lock)
	}
	ok, err := p.r.lockRelease(uint64(p.slot) + 1)
	if err != nil {
		p.err = err
		return 0, err
	}
	if !ok {
		return 0, nil
	}
	defer p.r.unlockRelease()
	capacity := p.r.capacity
	pr, err := p.r.loadPositions(0) // stable: only the lock's holder moves the consumer position
	if err != nil {
		p.err = err
		return 0, err
	}
	c, pos := pr.c, pr.p
	need := p.r.dataSize(n)
	total := need
	if tail := capacity - pos&p.mask; need > tail {
		total = tail + need
	}
	limit := p.limit()
	target, dropped := c, 0
	for pos+total-target > limit && target != pos {
		i := target & p.mask
		// Under the lock: pairs with the committed header stores (TryWrite,
		// putShared, CommitN) of records below the frontier.
		h := word(p.data, i).Load()
		if h == 0 || headerType(h) == TypePending {
			break // being written (or abandoned: the consumer's recovery skips it)
		}
		// Under the lock nobody else zeroes or reclaims: anything but a
		// record committed within the reserved space is damage.
		t, _, size, ok := p.r.decodeRecord(h, i, pos-target)
		if !ok {
			p.err = corruptf(p.r.dataOff+i, "record header %#016x at position %d does not fit the reserved space (up to %d)", h, target, pos)
			return 0, p.err
		}
		if t == TypeData {
			dropped++
		}
		target += size
	}
	if target == c {
		return 0, nil
	}
	p.r.releaseRange(c, target)
	p.consCached = target
	p.AddDrops(uint64(dropped))
	return dropped, nil
}
