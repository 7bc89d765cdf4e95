package ring

// FormatAt is the test-only hook that starts both positions at start, so a
// test can run a ring through the 2^64 wrap of its positions.
func FormatAt(region []byte, c Config, start uint64) error { return formatAt(region, c, start) }

// RecordSize exposes recordSize to tests.
func RecordSize(n uint64) uint64 { return recordSize(n) }

// Region offsets tests corrupt.
const (
	OffProducerPos = offProducerPos
	OffConsumerPos = offConsumerPos
	OffCapacity    = offCapacity
	OffVersion     = offVersion
	OffChecksum    = offChecksum
)

// Steps of an MPSC reservation, for ReserveDying.
const (
	StepIntent  = iota // intent published, no compare-and-swap yet
	StepCAS            // space taken, nothing written
	StepPadding        // wrap padding written (if the record wraps)
	StepPending        // pending header written
	StepPayload        // payload written, not committed
)

// ReserveDying runs p's MPSC write protocol for msg up to and including
// step, then stops as a producer killed there would. It mirrors
// reserveShared step by step; the real code is exercised by the SIGKILL
// chaos test in package ipc.
func ReserveDying(p *Producer, msg []byte, step int) {
	n := uint64(len(msg))
	need := recordSize(n)
	pos := p.prodPos.Load()
	tail := p.r.capacity - pos&p.mask
	total := need
	if need > tail {
		total = tail + need
	}
	publish(p.intentLen, total)
	publish(p.intentPos, pos)
	if step == StepIntent {
		return
	}
	if !p.prodPos.CompareAndSwap(pos, pos+total) {
		panic("ReserveDying: contended")
	}
	if step == StepCAS {
		return
	}
	rec := pos
	if need > tail {
		publish(word(p.data, pos&p.mask), makeHeader(uint32(tail-HeaderSize), p.slot, TypePadding))
		rec += tail
	}
	if step == StepPadding {
		return
	}
	publish(word(p.data, rec&p.mask), makeHeader(uint32(n), p.slot, TypePending))
	if step == StepPending {
		return
	}
	copy(p.data[rec&p.mask+HeaderSize:], msg)
}

// RegionOf returns the region a Ring views.
func RegionOf(r *Ring) []byte { return r.region }

// SetConsumerPos stores the consumer position directly.
func SetConsumerPos(region []byte, pos uint64) { word(region, offConsumerPos).Store(pos) }

// SetLastSeq stores a slot's (or the SPSC producer's) last committed
// sequence directly: a producer killed between its commit and this store.
func SetLastSeq(r *Ring, slot int, seq uint64) {
	off := uint64(offLastSeq)
	if r.kind == MPSC {
		off = r.SlotOffset(slot) + slotLastSeq
	}
	word(r.region, off).Store(seq)
}

// DisableCounters stops p and c from updating the message and byte
// counters, to measure what they cost.
func DisableCounters(p *Producer, c *Consumer) { p.noCounters, c.noCounters = true, true }

// CommitDying writes msg as a header-commit ring's producer killed after
// its commit and before its position store would: the record is readable,
// the producer position does not include it.
func CommitDying(p *Producer, msg []byte) error {
	pos, err := p.reserve(uint64(len(msg)))
	if err != nil {
		return err
	}
	p.put(pos, msg)
	return nil
}

// OffReleaseLock and OffZeroEnd: the release lock and zeroing mark of an
// MPSC drop-oldest ring.
const (
	OffReleaseLock = offReleaseLock
	OffZeroEnd     = offZeroEnd
)

// ReclaimDying runs p's drop-oldest reclaim in an MPSC ring as a producer
// killed mid-zeroing would: it takes the release lock, marks the oldest
// committed record for release, zeroes half of it and stops, holding the
// lock. It mirrors reclaimShared.
func ReclaimDying(p *Producer) {
	if ok, err := p.r.lockRelease(uint64(p.slot) + 1); !ok || err != nil {
		panic("ReclaimDying: lock not taken")
	}
	c := p.consPos.Load()
	i := c & p.mask
	h := word(p.data, i).Load()
	size := p.r.dataSize(headerLength(h))
	publish(word(p.r.region, offZeroEnd), c+size)
	clear(p.data[i : i+size/2])
}

// BatchDying runs p's MPSC WriteBatch for msgs as a producer killed part of
// the way would: one reservation for the run (the real reserveRun), the
// first commit records written and committed (the real putShared), then
// for the next record step (StepCAS: nothing, StepPending: its pending
// header, StepPayload: that and its payload), and it stops. It returns the
// run's length in records.
func BatchDying(p *Producer, msgs [][]byte, commit, step int) int {
	pos, k := p.reserveRun(msgs)
	if k <= commit {
		panic("BatchDying: run too short")
	}
	for _, m := range msgs[:commit] {
		publish(word(p.data, pos&p.mask), makeHeader(uint32(len(m)), p.slot, TypePending))
		p.putShared(pos, m)
		pos += p.r.dataSize(uint64(len(m)))
	}
	m := msgs[commit]
	if step >= StepPending {
		publish(word(p.data, pos&p.mask), makeHeader(uint32(len(m)), p.slot, TypePending))
	}
	if step >= StepPayload {
		copy(p.data[pos&p.mask+HeaderSize:], m)
	}
	return k
}

// SetAfterRun installs fn, called after each piece of p's MPSC WriteBatch
// (a run of records, or a record written alone) with its length.
func SetAfterRun(p *Producer, fn func(n int)) { p.afterRun = fn }

// Intent returns slot k's intent (position, length).
func Intent(r *Ring, k int) (uint64, uint64) { return r.intent(k) }
