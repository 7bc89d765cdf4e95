package ring

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/shmring/shmring/internal/pad"
)

// Producer writes records into a ring. It is not safe for concurrent use:
// one goroutine writes through it (two writing at once write records over
// each other and publish positions out of order, which loses messages and
// leaves the ring ErrCorrupt for every party; package ipc detects it in
// -race builds). An SPSC ring has one Producer at a time;
// an MPSC ring has one per slot, in any processes (package ipc enforces
// both across processes with file locks).
//
// Every method is non-blocking; waiting when the ring is full is the policy
// layer's business (package ipc).
type Producer struct {
	r    *Ring
	data []byte
	mask uint64

	prodPos *atomic.Uint64 // shared: SPSC our published position; MPSC the reservation frontier
	consPos *atomic.Uint64 // shared: the consumer's position (untrusted)

	msgsIn, bytesIn, fullEvents, drops, spins *atomic.Uint64
	yields                                    *atomic.Uint64

	// Sequences (docs/layout.md, "Sequences"). seqBegun: the highest
	// sequence written into a record, stored before that record's commit
	// (our slot's word, or line 3's); seqDone (SPSC only, else nil): the
	// last committed, stored after the position store.
	seqBegun, seqDone  *atomic.Uint64
	seq                uint64 // the number the next record gets
	seqHigh, seqDoneV  uint64 // what seqBegun and seqDone hold (never lowered)
	doubtFrom, doubtTo uint64 // InDoubt, as found when the producer opened

	window, pHigh   *atomic.Uint64 // flow control words (line 8)
	pressure        *atomic.Uint32
	pressureChanges *atomic.Uint64
	overflowed      *atomic.Uint64

	mpsc                  bool
	slot                  uint16
	intentPos, intentLen  *atomic.Uint64 // MPSC: our slot's intent words
	claimStart, claimSize uint64         // MPSC: the reservation of the outstanding claim

	pos        uint64 // our position, the truth; the shared copy trails it
	consCached uint64 // last consumer position loaded and validated

	claimed  bool
	claimPos uint64 // position of the claimed record's header
	claimLen uint64 // payload length claimed

	padPos, padSize uint64 // header-commit rings: wrap padding not yet written

	err error // sticky: set on corruption

	noCounters bool // test only: measure what the counters cost

	afterRun func(n int) // test only: called after each piece of an MPSC WriteBatch

	hook func(step int) // test only: called at each step of an MPSC write (see stepIntent)
}

// The steps of an MPSC write at which a test's hook (Producer.hook, and
// Ring.hook for a release) is called, so that it can stop the real code
// there as a producer killed at that point would stop (export_test.go).
const (
	stepIntent        = iota // intent published, no compare-and-swap yet
	stepCAS                  // space taken, nothing written
	stepPadding              // wrap padding written, if the record wraps
	stepPending              // pending header written
	stepPayload              // payload written, not counted
	stepCounted              // counted, not committed
	stepCommitted            // a batch's record committed, the next not begun
	stepReleaseMarked        // a release's zeroing mark published, nothing zeroed
)

// Steps of a write at which a test's hook (Producer.hook) is called for the
// sequence tests (export_seq_test.go).
const (
	stepSeqStored = 100 + iota // a record's sequence written (and stored as begun), nothing committed
	stepCommit                 // a record (an SPSC batch) committed, nothing after that store
)

// NewProducer returns the producer side of r, resuming at the published
// producer position. It fails with ErrCorrupt if the positions in the region
// are inconsistent.
func (r *Ring) NewProducer() (*Producer, error) {
	p := pad.New[Producer]()
	*p = Producer{
		r:          r,
		data:       r.data,
		mask:       r.capacity - 1,
		prodPos:    word(r.region, offProducerPos),
		consPos:    word(r.region, offConsumerPos),
		msgsIn:     word(r.region, offMsgsIn),
		bytesIn:    word(r.region, offBytesIn),
		fullEvents: word(r.region, offFullEvents),
		drops:      word(r.region, offDrops),
		spins:      word(r.region, offSpins),
	}
	p.pos = p.prodPos.Load()
	p.initFlow(word(r.region, offOverflowed))
	p.yields = word(r.region, offYields)
	if r.kind != SPSC {
		return nil, fmt.Errorf("ring: NewProducer is for spsc rings; an mpsc ring takes NewSlotProducer")
	}
	if err := p.initSeqs(offSeqBegun, offLastSeq); err != nil {
		return nil, err
	}
	if p.pos%Align != 0 {
		return nil, corruptf(offProducerPos, "producer position %d is not %d-aligned", p.pos, Align)
	}
	if r.polled {
		if err := p.resumeCommitted(); err != nil {
			return nil, err
		}
	}
	if err := p.reloadConsumer(); err != nil {
		return nil, err
	}
	return p, nil
}

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
// word at its position free), so it ends at a zero header within that.
func (p *Producer) resumeCommitted() error {
	c := p.consPos.Load()
	pos := p.pos
	_, ahead, ok := p.r.span(pos, c)
	if !ok {
		p.err = corruptf(offConsumerPos, "consumer position %d is inconsistent with producer position %d (capacity %d)", c, pos, p.r.capacity)
		return p.err
	}
	if ahead { // the consumer read records past the published position
		pos = c
	}
	for {
		i := pos & p.mask
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
	return p, nil
}

// sharedPositions loads the frontier of an MPSC ring into p.pos and the
// consumer position into p.consCached as a consistent pair and returns the
// depth between them. Other producers move the frontier and the consumer its
// position meanwhile, so a frontier loaded first can be behind a consumer
// position loaded second. Both only grow: if the consumer position reads the
// same before and after the frontier load, it held at that load, and the pair
// is one the ring was in. A ring so busy that no attempt is stable gets the
// last pair with the depth clamped to [0, capacity]: the callers use it as
// an estimate (reserveShared checks again against the live positions).
func (p *Producer) sharedPositions() (uint64, error) {
	capacity := p.r.capacity
	var pos, c uint64
	for range 100 {
		c = p.consPos.Load()
		pos = p.prodPos.Load()
		if p.consPos.Load() != c {
			continue
		}
		if pos-c > capacity || c%Align != 0 || pos%Align != 0 {
			p.err = corruptf(offConsumerPos, "consumer position %d is inconsistent with producer position %d (capacity %d)", c, pos, capacity)
			return 0, p.err
		}
		p.pos, p.consCached = pos, c
		return pos - c, nil
	}
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

func (p *Producer) initFlow(overflowed *atomic.Uint64) {
	p.window = word(p.r.region, offWindow)
	p.pHigh = word(p.r.region, offPressureHigh)
	p.pressure = word32(p.r.region, offPressure)
	p.pressureChanges = word(p.r.region, offPressureChanges)
	p.overflowed = overflowed
}

// initSeqs loads where the producer's sequences resume, in a ring with
// sequences: begun is the region offset of the word holding the highest
// sequence written into a record (stored before that record's commit), done
// (SPSC; 0 in MPSC) of the word holding the last one committed (stored
// after the position store).
//
// Why the successor of a producer killed at any instruction neither loses
// nor duplicates (docs/layout.md, "Sequences", and docs/design.md): the
// consumer discards a record of ours when its sequence is at or below the
// last it delivered of ours, which is the sequence of a record we
// committed. Every record is committed after its sequence was stored in
// begun (program order, release stores), and begun never decreases; the
// caller holds our role, so the predecessor is gone and its stores are
// visible. So the numbers from begun+1 on, which new records get, are above
// every sequence the predecessor may have committed: none of them is
// discarded, and nothing committed is renumbered. What may be uncommitted
// is InDoubt: MPSC, the record of sequence begun (each record is committed
// before the next one is begun); SPSC, the records after done (a batch is
// committed by one position store, then done is stored).
func (p *Producer) initSeqs(begun, done uint64) error {
	if !p.r.seqs {
		return nil
	}
	p.seqBegun = word(p.r.region, begun)
	high := p.seqBegun.Load()
	from := high
	if done != 0 {
		p.seqDone = word(p.r.region, done)
		p.seqDoneV = p.seqDone.Load()
		// A producer that kept only this word (an older release) leaves
		// begun behind it.
		high = max(high, p.seqDoneV)
		from = p.seqDoneV + 1
	}
	if high == 1<<64-1 {
		p.err = corruptf(begun, "last sequence %d leaves no sequence for the next record", high)
		return p.err
	}
	p.seq, p.seqHigh = high+1, high
	p.doubtFrom, p.doubtTo = min(max(from, 1), high+1), high+1
	return nil
}

// limit is the most bytes the ring may hold now: the capacity, or the
// consumer's window if narrower.
func (p *Producer) limit() uint64 {
	c := p.r.capacity
	if p.r.polled {
		// Header commit: the word at the producer position is kept zero,
		// so it must lie in free space: never fill the last word.
		c -= Align
	}
	if w := p.window.Load(); w != 0 && w < c {
		return w
	}
	return c
}

// fastFits reports whether a reservation leaving est bytes in the ring
// (by the cached consumer position, an over-estimate) fits without looking
// at the consumer position: it fits the limit, and does not reach the
// pressure level while pressure is off (crossing it needs an exact depth).
func (p *Producer) fastFits(est uint64) bool {
	if est > p.limit() {
		return false
	}
	high := p.pHigh.Load()
	return high == 0 || est < high || p.pressure.Load()&PressureDepth != 0
}

// raisePressure sets the soft pressure level when depth reaches the high
// level; the consumer lowers it (Consumer.reloadProducer).
func (p *Producer) raisePressure(depth uint64) {
	high := p.pHigh.Load()
	if high == 0 || depth < high {
		return
	}
	for {
		old := p.pressure.Load()
		if old&PressureDepth != 0 {
			return
		}
		if p.pressure.CompareAndSwap(old, old|PressureDepth) {
			p.pressureChanges.Add(1)
			return
		}
	}
}

// Pressure returns the ring's pressure word: 0 none; PressureDepth set when
// the depth reached the high level and has not yet fallen to the low level;
// PressureDelay set when queueing delay has stayed above the target for an
// interval (rings with timestamps).
func (p *Producer) Pressure() uint32 { return p.pressure.Load() }

// AddOverflowed counts n messages handed to an overflow route.
func (p *Producer) AddOverflowed(n uint64) { publish(p.overflowed, p.overflowed.Load()+n) }

// Slot returns the producer's slot (0 in SPSC rings).
func (p *Producer) Slot() int { return int(p.slot) }

// Err returns the sticky error that stopped the producer, if any.
func (p *Producer) Err() error { return p.err }

// Ring returns the ring this producer writes.
func (p *Producer) Ring() *Ring { return p.r }

// reloadConsumer loads and validates the consumer position.
func (p *Producer) reloadConsumer() error {
	c := p.consPos.Load()
	depth := p.pos - c
	if depth > p.r.capacity || c%Align != 0 {
		p.err = corruptf(offConsumerPos, "consumer position %d is inconsistent with producer position %d (capacity %d)", c, p.pos, p.r.capacity)
		return p.err
	}
	p.consCached = c
	p.r.raiseHighWater(depth)
	return nil
}

// reserve finds room for a record with an n-byte payload, writing a padding
// record at the tail if the record must start at index 0. It returns the
// position of the record's header; nothing is published.
func (p *Producer) reserve(n uint64) (uint64, error) {
	if p.err != nil {
		return 0, p.err
	}
	if n > p.r.maxMessage {
		return 0, fmt.Errorf("ring: message of %d bytes exceeds the maximum of %d: %w", n, p.r.maxMessage, ErrTooLarge)
	}
	if p.mpsc {
		return p.reserveShared(n)
	}
	need := p.r.dataSize(n)
	pos := p.pos
	tail := p.r.capacity - pos&p.mask
	total := need
	if need > tail {
		total = tail + need
	}
	if !p.fastFits(pos + total - p.consCached) {
		if p.r.polled {
			// Header commit: store the position before loading the
			// consumer's, so that everything committed after this store
			// lies within capacity-8 bytes of it, which bounds how far a
			// consumer can be past the stored position when this producer
			// dies before its next store (docs/layout.md). A batch's
			// records are all committed here (its padding too).
			publish(p.prodPos, pos)
		}
		if err := p.reloadConsumer(); err != nil {
			return 0, err
		}
		depth := pos + total - p.consCached
		p.raisePressure(depth)
		if depth > p.limit() {
			return 0, ErrFull
		}
	}
	if need > tail {
		if p.r.polled {
			// The consumer would see the padding as soon as it is
			// written: write it after the record at index 0 (flushPad).
			p.padPos, p.padSize = pos, tail
		} else {
			// Padding to the end of the data area. It lies in free
			// space, so the consumer cannot see it before the next
			// publish.
			publish(word(p.data, pos&p.mask), makeHeader(uint32(tail-HeaderSize), 0, TypePadding))
		}
		pos += tail
	}
	return pos, nil
}

// flushPad writes the wrap padding reserve deferred (header-commit rings),
// once the record after it is committed.
func (p *Producer) flushPad() {
	if p.padSize != 0 {
		publish(word(p.data, p.padPos&p.mask), makeHeader(uint32(p.padSize-HeaderSize), 0, TypePadding))
		p.padSize = 0
	}
}

// reserveShared is reserve for MPSC: publish the intent, take the space
// with compare-and-swap on the producer position, write the padding (if the
// record wraps) and the pending header. It returns the record's position
// and leaves p.claimStart/claimSize describing the whole reservation.
func (p *Producer) reserveShared(n uint64) (uint64, error) {
	need := p.r.dataSize(n)
	capacity := p.r.capacity
	for {
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
		c := p.consPos.Load()
		if c%Align != 0 {
			p.err = corruptf(offConsumerPos, "consumer position %d is not %d-aligned", c, Align)
			return false, p.err
		}
		if pos-c > capacity {
			// Our load of the frontier is older than the consumer's
			// position, or the positions are damaged: look again. The
			// pair is evidence of damage only if the consumer position
			// held still while the frontier was loaded (others move
			// both meanwhile: the consumer, and in a drop-oldest ring
			// the producers reclaiming).
			now := p.prodPos.Load()
			if p.consPos.Load() == c && (now-c > capacity || c%Align != 0) {
				p.err = corruptf(offConsumerPos, "consumer position %d is inconsistent with producer position %d (capacity %d)", c, now, capacity)
				return false, p.err
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
			c := p.consPos.Load()
			if pos-c <= capacity && c%Align == 0 {
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

// TryWrite copies msg into the ring as one record and publishes it. It
// returns ErrFull if there is no room (nothing is written), ErrTooLarge if
// msg exceeds MaxMessage, or ErrCorrupt if the region is damaged.
func (p *Producer) TryWrite(msg []byte) error {
	if p.claimed {
		return ErrClaimPending
	}
	pos, err := p.reserve(uint64(len(msg)))
	if err != nil {
		return err
	}
	if p.mpsc {
		// putShared, written out: calling it from here measured 10% to
		// 15% slower in the cross-process SPSC case (shmring-spsc against
		// c-ring, four interleaved pairs of builds), which never takes this
		// branch; the placement of the SPSC path's code, not its work.
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
		return nil
	}
	p.put(pos, msg)
	publish(p.prodPos, p.pos)
	if p.hook != nil {
		p.hook(stepCommit)
	}
	p.count(1, uint64(len(msg)))
	p.committed()
	return nil
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

// put writes one record at pos (returned by reserve) and advances p.pos.
func (p *Producer) put(pos uint64, msg []byte) {
	i := pos & p.mask
	copy(p.data[i+HeaderSize+p.r.extra:], msg)
	p.stamp(i)
	next := pos + p.r.dataSize(uint64(len(msg)))
	p.zeroNext(next)
	publish(word(p.data, i), makeHeader(uint32(len(msg)), 0, TypeData))
	p.flushPad()
	p.pos = next
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

func (p *Producer) count(msgs, bytes uint64) {
	if p.noCounters {
		return
	}
	add2(p.msgsIn, msgs, p.bytesIn, bytes)
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
	for _, m := range msgs {
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

// Claim reserves room for an n-byte payload and returns the slice to fill,
// which lies inside the ring. The record becomes visible at Commit; Abort
// gives the room back. The slice must not be used after Commit or Abort.
// Claim returns ErrFull, ErrTooLarge or ErrCorrupt as TryWrite does.
func (p *Producer) Claim(n int) ([]byte, error) {
	if p.claimed {
		return nil, ErrClaimPending
	}
	if n < 0 {
		return nil, fmt.Errorf("ring: claim of negative length %d", n)
	}
	pos, err := p.reserve(uint64(n))
	if err != nil {
		return nil, err
	}
	p.claimed, p.claimPos, p.claimLen = true, pos, uint64(n)
	i := pos&p.mask + HeaderSize + p.r.extra
	return p.data[i : i+uint64(n) : i+uint64(n)], nil
}

// stamp writes the commit time and the sequence of the record at index i,
// if the ring's records carry them. Plain stores: the header store after
// them publishes them. A sequence above any so far is stored in the begun
// word first, before the record can be committed (initSeqs says why).
func (p *Producer) stamp(i uint64) {
	if p.r.ts {
		binary.LittleEndian.PutUint64(p.data[i+p.r.tsOff:], uint64(nanotime()))
	}
	if p.r.seqs {
		s := p.seq
		binary.LittleEndian.PutUint64(p.data[i+p.r.seqOff:], s)
		if s > p.seqHigh {
			p.seqHigh = s
			publish(p.seqBegun, s)
		}
		if p.hook != nil {
			p.hook(stepSeqStored)
		}
	}
}

// committed moves on from the sequence of a record just committed (SPSC:
// and stores it as the last committed).
func (p *Producer) committed() {
	if p.r.seqs {
		p.storeDone(p.seq)
		p.seq++
	}
}

// storeDone stores s as the SPSC producer's last committed sequence, after
// the position store that committed it, if it is the highest yet.
func (p *Producer) storeDone(s uint64) {
	if p.seqDone != nil && s > p.seqDoneV {
		p.seqDoneV = s
		publish(p.seqDone, s)
	}
}

// TryWriteOverwrite is TryWrite for a ring created with Overwrite: when the
// record does not fit, the oldest records are reclaimed (newest wins) by
// moving the consumer position past them with compare-and-swap, and counted
// as drops. It returns how many messages were reclaimed. It still returns
// ErrFull when the record cannot fit even in an empty ring (a window
// smaller than the record).
func (p *Producer) TryWriteOverwrite(msg []byte) (int, error) {
	if !p.r.overwrite {
		return 0, fmt.Errorf("ring: TryWriteOverwrite on a ring created without Overwrite")
	}
	if p.claimed {
		return 0, ErrClaimPending
	}
	if p.mpsc {
		return p.tryWriteOverwriteShared(msg)
	}
	err := p.TryWrite(msg)
	if err != ErrFull {
		return 0, err
	}
	dropped, err := p.reclaim(uint64(len(msg)))
	if err != nil {
		return dropped, err
	}
	return dropped, p.TryWrite(msg)
}

// reclaim moves the consumer position past the oldest records until a
// record with an n-byte payload fits.
func (p *Producer) reclaim(n uint64) (int, error) {
	need := p.r.dataSize(n)
	pos := p.pos
	tail := p.r.capacity - pos&p.mask
	total := need
	if need > tail {
		total = tail + need
	}
	limit := p.limit()
	for {
		c := p.consPos.Load()
		if pos-c > p.r.capacity || c%Align != 0 {
			p.err = corruptf(offConsumerPos, "consumer position %d is inconsistent with producer position %d", c, pos)
			return 0, p.err
		}
		target, dropped := c, 0
		for pos+total-target > limit && target != pos {
			i := target & p.mask
			h := word(p.data, i).Load()
			// Only this producer writes below its position, and the
			// consumer only reads there: every record is committed, data
			// or padding, and lies within what the producer wrote.
			t, _, size, ok := p.r.decodeRecord(h, i, pos-target)
			if !ok {
				p.err = corruptf(p.r.dataOff+i, "record header %#016x at position %d is not a record the producer wrote (it wrote up to %d)", h, target, pos)
				return 0, p.err
			}
			if t == TypeData {
				dropped++
			}
			target += size
		}
		if pos+total-target > limit {
			return 0, ErrFull
		}
		if p.consPos.CompareAndSwap(c, target) {
			p.consCached = target
			p.AddDrops(uint64(dropped))
			return dropped, nil
		}
	}
}

// NextSeq returns the sequence number the next record gets: one past the
// highest this producer, or its predecessors in the role (the SPSC
// producer, or the MPSC slot, across restarts), may have committed. A new
// ring's first is 1.
func (p *Producer) NextSeq() uint64 { return p.seq }

// InDoubt returns the sequences, [from, to), that the predecessor in this
// producer's role may have died committing: every record it wrote with a
// sequence below from was committed, none with one at or above to (which
// is NextSeq when the producer opened). MPSC: the predecessor's last
// record, from = to-1 (a commit cannot be told from a death just before
// it); SPSC: the records after its last position store (a batch), empty if
// it finished its last write. A producer that resends the messages it had
// given sequences from on, in order, each with its original sequence
// (TryWriteSeq), before any new message, loses none and duplicates none:
// the consumer discards each one that was committed.
func (p *Producer) InDoubt() (from, to uint64) { return p.doubtFrom, p.doubtTo }

// TryWriteSeq is TryWrite with the record's sequence number given: a
// producer retrying a message it may already have committed (after a crash,
// say) sends it with its original sequence, and the consumer discards it if
// it was delivered. Sequences of one producer must increase, except that
// the messages InDoubt names may be resent first, from its start.
func (p *Producer) TryWriteSeq(seq uint64, msg []byte) error {
	if !p.r.seqs {
		return fmt.Errorf("ring: TryWriteSeq on a ring created without sequences")
	}
	saved := p.seq
	p.seq = seq
	err := p.TryWrite(msg)
	if err != nil {
		p.seq = saved
	} else {
		p.seq = max(p.seq, saved)
	}
	return err
}

// Claimed returns the length of the outstanding claim, or -1 if none.
func (p *Producer) Claimed() int {
	if !p.claimed {
		return -1
	}
	return int(p.claimLen)
}

// Commit publishes the claimed record with its full claimed length.
func (p *Producer) Commit() error { return p.CommitN(int(p.claimLen)) }

// CommitN publishes the claimed record with only its first n bytes, for a
// producer that claimed the most it might need. n must not exceed the claim.
func (p *Producer) CommitN(n int) error {
	if !p.claimed {
		return ErrNoClaim
	}
	if n < 0 || uint64(n) > p.claimLen {
		return fmt.Errorf("ring: commit of %d bytes, claimed %d", n, p.claimLen)
	}
	i := p.claimPos & p.mask
	p.claimed = false
	p.stamp(i)
	if p.mpsc {
		// The reservation's size is fixed: pad what the shorter record leaves.
		if rest := p.r.dataSize(p.claimLen) - p.r.dataSize(uint64(n)); rest > 0 {
			publish(word(p.data, i+p.r.dataSize(uint64(n))), makeHeader(uint32(rest-HeaderSize), p.slot, TypePadding))
		}
		p.count(1, uint64(n))
		publish(word(p.data, i), makeHeader(uint32(n), p.slot, TypeData))
		if p.hook != nil {
			p.hook(stepCommit)
		}
		p.committed()
		return nil
	}
	p.zeroNext(p.claimPos + p.r.dataSize(uint64(n)))
	publish(word(p.data, i), makeHeader(uint32(n), 0, TypeData))
	p.flushPad()
	p.pos = p.claimPos + p.r.dataSize(uint64(n))
	publish(p.prodPos, p.pos)
	if p.hook != nil {
		p.hook(stepCommit)
	}
	p.count(1, uint64(n))
	p.committed()
	return nil
}

// Abort abandons the outstanding claim. In an SPSC ring nothing was
// visible; in an MPSC ring the reservation becomes padding, which the
// consumer skips.
func (p *Producer) Abort() {
	if !p.claimed {
		return
	}
	p.claimed = false
	if p.mpsc {
		size := p.r.dataSize(p.claimLen)
		publish(word(p.data, p.claimPos&p.mask), makeHeader(uint32(size-HeaderSize), p.slot, TypePadding))
	}
	// Header commit: the claim's header word was never written, so it
	// still reads zero; the deferred padding is not needed.
	p.padSize = 0
}

// AddFullEvent counts one write that found the ring full (the policy layer
// calls it once per write call, however long it then waits).
func (p *Producer) AddFullEvent() { publish(p.fullEvents, p.fullEvents.Load()+1) }

// AddDrops counts n messages dropped by policy.
func (p *Producer) AddDrops(n uint64) { publish(p.drops, p.drops.Load()+n) }

// AddSpins counts n busy-wait iterations and y sched_yield calls.
func (p *Producer) AddSpins(n, y uint64) { add2(p.spins, n, p.yields, y) }

// Free returns the free space as last seen by the producer, refreshing its
// view of the consumer position.
func (p *Producer) Free() (uint64, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.mpsc {
		depth, err := p.sharedPositions()
		if err != nil {
			return 0, err
		}
		return p.r.capacity - depth, nil
	}
	if err := p.reloadConsumer(); err != nil {
		return 0, err
	}
	return p.r.capacity - (p.pos - p.consCached), nil
}
