// MPSC reservation: producer slots, intents, the compare-and-swap on the
// frontier, and the pending-then-committed header of each record.

package ring

import (
	"fmt"
	"sync/atomic"

	"github.com/shmring/shmring/internal/pad"
)

// NewSlotProducer returns a producer of an MPSC ring writing as producer
// slot i. The caller must hold the slot exclusively (package ipc takes the
// slot's lock first); the slot's counters continue from their values.
func (r *Ring) NewSlotProducer(i int) (*Producer, error) {
	if r.kind != MPSC {
		return nil, fmt.Errorf("ring: NewSlotProducer is for mpsc rings")
	}
	if i < 0 || i >= r.slots {
		return nil, fmt.Errorf("ring: producer slot %d out of range [0, %d)", i, r.slots)
	}
	base := r.SlotOffset(i)
	w := func(off uint64) *atomic.Uint64 { return word(r.region, base+off) }
	p := pad.New[Producer]()
	*p = Producer{
		r:          r,
		data:       r.data,
		mask:       r.capacity - 1,
		prodPos:    word(r.region, offProducerPos),
		consPos:    word(r.region, offConsumerPos),
		msgsIn:     w(slotMsgsIn),
		bytesIn:    w(slotBytesIn),
		fullEvents: w(slotFullEvents),
		drops:      w(slotDrops),
		spins:      w(slotSpins),
		mpsc:       true,
		slot:       uint16(i),
		intentPos:  w(slotIntentPos),
		intentLen:  w(slotIntentLen),
	}
	p.initFlow(w(slotOverflowed))
	p.yields = w(slotYields)
	if err := p.initSeqs(base+slotLastSeq, 0); err != nil {
		return nil, err
	}
	if _, err := p.sharedPositions(); err != nil {
		return nil, err
	}
	// An intent left in the slot is a dead predecessor's (the caller holds
	// the slot): withdraw it. Otherwise the consumer, finding the dead
	// record it covers, would ask whether the slot's holder is alive, hear
	// yes (us), and wait for us to commit a record we never reserved; and
	// if the ring is full behind that record we never write, so nobody
	// moves (found by TestDropOldestChaos at 600 kills). Without the intent
	// the consumer bounds a dead unwritten reservation by the other intents,
	// the first non-zero word and the producer position.
	publish(p.intentLen, 0)
	publish(p.intentPos, 0)
	p.plain = !r.seqs && !r.ts && !r.polled // header commit is SPSC only (Attach refuses it with MPSC)
	p.setFast()
	return p, nil
}

// tryWriteShared is TryWrite for a plain MPSC ring (Producer.fastShared).
// A record that fits before the end of the data area, in the room the
// cached consumer position shows, is reserved and written here: the
// protocol's stores in the protocol's order (docs/layout.md, "Writing (MPSC
// producer holding slot s)": the intent, the compare-and-swap, the pending
// header, the payload, the counters, the committed header), with no call
// but the copy's. Anything else (a wrap, a ring that looks full by the
// cached consumer position, a compare-and-swap lost to another producer, a
// damaged frontier, a refused message) goes to tryWrite, which starts again
// from the frontier and decides. Keep this path free of other calls: its
// cost is issue 17's (docs/benchmarks.md).
func (p *Producer) tryWriteShared(msg []byte) error {
	n := uint64(len(msg))
	if p.err == nil && n <= p.r.maxMessage {
		need := recordSize(n) // dataSize: a plain ring has no extras
		capacity := p.r.capacity
		// Acquire: the frontier publishes nothing (record headers do); this
		// is the value our compare-and-swap advances from.
		pos := p.prodPos.Load()
		i := pos & p.mask
		// takeShared's test of the cached consumer position: the frontier
		// at most capacity past it (else it is stale, or the ring damaged:
		// tryWrite looks), the record within room (fastFits).
		d := pos - p.consCached
		if pos%Align == 0 && need <= capacity-i && d <= capacity && d+need <= p.room() {
			// The intent must be visible before the reservation exists: a
			// consumer that finds the reservation unwritten sizes it from
			// here.
			publish(p.intentLen, need)
			publish(p.intentPos, pos)
			if p.prodPos.CompareAndSwap(pos, pos+need) {
				// pos is 8-aligned and need <= capacity-i: the header
				// and the payload lie inside the data area (dataWord,
				// dataBytes: no bounds checks).
				w := dataWord(p.data, i)
				h := makeHeader(uint32(n), p.slot, TypePending)
				publish(w, h)
				if dst := dataBytes(p.data, i+HeaderSize, n); smallCopy(n) {
					copySmall(dst, msg) // inline, no memmove call
				} else {
					copy(dst, msg)
				}
				// Counted before the commit: a consumer never sees a
				// record its producer's counter does not include.
				p.count(1, n)
				// Release: the payload is visible to a consumer that
				// loads this header as data.
				publish(w, h^(TypePending^TypeData)<<48)
				return nil
			}
			// Lost the race: withdraw the intent (takeShared says why).
			publish(p.intentLen, 0)
		}
	}
	return p.tryWrite(msg)
}

// sharedPositions loads the frontier of an MPSC ring into p.pos and the
// consumer position into p.consCached as a consistent pair and returns the
// depth between them (loadPositions: other producers move the frontier and
// the consumer its position meanwhile). A ring so busy that no attempt is
// stable gets the
// last pair with the depth clamped to [0, capacity]: the callers use it as
// an estimate (reserveShared checks again against the live positions).
func (p *Producer) sharedPositions() (uint64, error) {
	pr, err := p.r.loadPositions(100)
	if err == nil {
		p.pos, p.consCached = pr.p, pr.c
		return pr.depth, nil
	} else if err != errMoving {
		p.err = err
		return 0, err
	}
	capacity, pos, c := p.r.capacity, pr.p, pr.c
	if c%Align != 0 || pos%Align != 0 {
		p.err = corruptf(offConsumerPos, "positions %d and %d are not %d-aligned", c, pos, Align)
		return 0, p.err
	}
	p.pos, p.consCached = pos, c
	switch {
	case int64(pos-c) < 0:
		p.pos = c
		return 0, nil
	case pos-c > capacity:
		return capacity, nil
	}
	return pos - c, nil
}

// reserveShared is reserve for MPSC: publish the intent, take the space
// with compare-and-swap on the producer position, write the padding (if the
// record wraps) and the pending header. It returns the record's position
// and leaves p.claimStart/claimSize describing the whole reservation.
func (p *Producer) reserveShared(n uint64) (uint64, error) {
	need := p.r.dataSize(n)
	capacity := p.r.capacity
	for {
		// Acquire: the frontier publishes nothing (record headers do); this is
		// the value our compare-and-swap advances from.
		pos := p.prodPos.Load()
		tail := capacity - pos&p.mask
		total := need
		if need > tail {
			total = tail + need
		}
		if ok, err := p.takeShared(pos, total); err != nil {
			return 0, err
		} else if !ok {
			continue
		}
		rec := pos
		if need > tail {
			publish(word(p.data, pos&p.mask), makeHeader(uint32(tail-HeaderSize), p.slot, TypePadding))
			rec += tail
		}
		if p.hook != nil {
			p.hook(stepPadding)
		}
		publish(word(p.data, rec&p.mask), makeHeader(uint32(n), p.slot, TypePending))
		if p.hook != nil {
			p.hook(stepPending)
		}
		p.claimStart, p.claimSize = pos, total
		return rec, nil
	}
}

// takeShared tries to reserve [pos, pos+total) in an MPSC ring, pos being
// the frontier as loaded: it checks the room (loading the consumer
// position if the cached one does not show enough), publishes the intent
// and advances the frontier by compare-and-swap. It reports false with no
// error when the frontier moved (load it again), ErrFull when there is no
// room, ErrCorrupt when the positions are damaged.
func (p *Producer) takeShared(pos, total uint64) (bool, error) {
	capacity := p.r.capacity
	if pos%Align != 0 {
		// Every reservation is a multiple of Align: only damage makes the
		// frontier unaligned (one predictable branch per reservation).
		p.err = corruptf(offProducerPos, "producer position %d is not %d-aligned", pos, Align)
		return false, p.err
	}
	if pos-p.consCached > capacity || !p.fastFits(pos+total-p.consCached) {
		// Acquire: pairs with the consumer's release store of its
		// position (Consumer.release, or releaseRange in a drop-oldest
		// ring): the space below it is zeroed and may be reserved.
		c := p.consPos.Load()
		if _, _, ok := p.r.span(pos, c); !ok {
			// Our load of the frontier is older than the consumer's
			// position, or the positions are damaged: look again. They
			// are evidence of damage only as a pair the ring was in
			// (others move both meanwhile: the consumer, and in a
			// drop-oldest ring the producers reclaiming).
			if _, err := p.r.loadPositions(1); err != nil && err != errMoving {
				p.err = err
				return false, err
			}
			return false, nil
		}
		p.consCached = c
		p.raisePressure(pos + total - c)
		if pos+total-c > p.limit() {
			p.r.raiseHighWater(pos - c)
			return false, ErrFull
		}
	}
	// The intent must be visible before the reservation exists: a
	// consumer that finds the reservation unwritten sizes it from here.
	publish(p.intentLen, total)
	publish(p.intentPos, pos)
	if p.hook != nil {
		p.hook(stepIntent)
	}
	if !p.prodPos.CompareAndSwap(pos, pos+total) {
		// Lost the race: withdraw the intent, which now covers another
		// producer's reservation. Left in place by a producer that then
		// finds the ring full and stops trying, it made the consumer wait
		// for this (live) producer to commit a record it never owned,
		// while the record's dead owner held up the ring
		// (TestDropOldestChaos at 600 kills).
		publish(p.intentLen, 0)
		return false, nil
	}
	if p.hook != nil {
		p.hook(stepCAS)
	}
	return true, nil
}

// putShared writes, counts and commits the MPSC record at pos, whose
// pending header is in place.
func (p *Producer) putShared(pos uint64, msg []byte) {
	i := pos & p.mask
	copy(p.data[i+HeaderSize+p.r.extra:], msg)
	p.stamp(i)
	if p.hook != nil {
		p.hook(stepPayload)
	}
	p.count(1, uint64(len(msg)))
	if p.hook != nil {
		p.hook(stepCounted)
	}
	publish(word(p.data, i), makeHeader(uint32(len(msg)), p.slot, TypeData))
	if p.hook != nil {
		p.hook(stepCommit)
	}
	p.committed()
	if p.hook != nil {
		p.hook(stepCommitted)
	}
}

// commitShared is CommitN for MPSC: it commits the claimed record at index
// i, stamped, with an n-byte payload. The reservation's size is fixed: a
// shorter record leaves padding after it, written before the commit.
func (p *Producer) commitShared(i, n uint64) {
	if rest := p.r.dataSize(p.claimLen) - p.r.dataSize(n); rest > 0 {
		publish(word(p.data, i+p.r.dataSize(n)), makeHeader(uint32(rest-HeaderSize), p.slot, TypePadding))
	}
	p.count(1, n)
	publish(word(p.data, i), makeHeader(uint32(n), p.slot, TypeData))
	if p.hook != nil {
		p.hook(stepCommit)
	}
	p.committed()
}
