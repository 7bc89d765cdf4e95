package ring

import (
	"fmt"
	"sync/atomic"
)

// Producer writes records into an SPSC ring. It is not safe for concurrent
// use: one goroutine, in one process, holds the producer role of a ring at a
// time (package ipc enforces that across processes with a file lock).
//
// Every method is non-blocking; waiting when the ring is full is the policy
// layer's business (package ipc).
type Producer struct {
	r    *Ring
	data []byte
	mask uint64

	prodPos *atomic.Uint64 // shared: our published position
	consPos *atomic.Uint64 // shared: the consumer's position (untrusted)

	msgsIn, bytesIn, fullEvents, drops, spins *atomic.Uint64

	pos        uint64 // our position, the truth; the shared copy trails it
	consCached uint64 // last consumer position loaded and validated

	claimed  bool
	claimPos uint64 // position of the claimed record's header
	claimLen uint64 // payload length claimed

	err error // sticky: set on corruption
}

// NewProducer returns the producer side of r, resuming at the published
// producer position. It fails with ErrCorrupt if the positions in the region
// are inconsistent.
func (r *Ring) NewProducer() (*Producer, error) {
	p := &Producer{
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
	if p.pos%Align != 0 {
		return nil, corruptf(offProducerPos, "producer position %d is not %d-aligned", p.pos, Align)
	}
	if err := p.reloadConsumer(); err != nil {
		return nil, err
	}
	return p, nil
}

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
	need := recordSize(n)
	pos := p.pos
	tail := p.r.capacity - pos&p.mask
	total := need
	if need > tail {
		total = tail + need
	}
	if pos+total-p.consCached > p.r.capacity {
		if err := p.reloadConsumer(); err != nil {
			return 0, err
		}
		if pos+total-p.consCached > p.r.capacity {
			return 0, ErrFull
		}
	}
	if need > tail {
		// Padding to the end of the data area. It lies in free space, so
		// the consumer cannot see it before the next publish.
		publish(word(p.data, pos&p.mask), makeHeader(uint32(tail-HeaderSize), 0, TypePadding))
		pos += tail
	}
	return pos, nil
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
	p.put(pos, msg)
	publish(p.prodPos, p.pos)
	p.count(1, uint64(len(msg)))
	return nil
}

// put writes one record at pos (returned by reserve) and advances p.pos.
func (p *Producer) put(pos uint64, msg []byte) {
	i := pos & p.mask
	copy(p.data[i+HeaderSize:], msg)
	publish(word(p.data, i), makeHeader(uint32(len(msg)), 0, TypeData))
	p.pos = pos + recordSize(uint64(len(msg)))
}

func (p *Producer) count(msgs, bytes uint64) {
	publish(p.msgsIn, p.msgsIn.Load()+msgs)
	publish(p.bytesIn, p.bytesIn.Load()+bytes)
}

// WriteBatch copies as many of msgs as fit, in order, and publishes them
// with one position store. It returns how many were written. If none fit it
// returns 0, ErrFull; if msgs[n] is too large it returns n, ErrTooLarge
// (the first n are written).
func (p *Producer) WriteBatch(msgs [][]byte) (int, error) {
	if p.claimed {
		return 0, ErrClaimPending
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
		n++
		bytes += uint64(len(m))
	}
	if n > 0 {
		publish(p.prodPos, p.pos)
		p.count(uint64(n), bytes)
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
	i := pos&p.mask + HeaderSize
	return p.data[i : i+uint64(n) : i+uint64(n)], nil
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
	publish(word(p.data, i), makeHeader(uint32(n), 0, TypeData))
	p.pos = p.claimPos + recordSize(uint64(n))
	p.claimed = false
	publish(p.prodPos, p.pos)
	p.count(1, uint64(n))
	return nil
}

// Abort abandons the outstanding claim; nothing becomes visible.
func (p *Producer) Abort() {
	p.claimed = false
}

// AddFullEvent counts one write that found the ring full (the policy layer
// calls it once per write call, however long it then waits).
func (p *Producer) AddFullEvent() { publish(p.fullEvents, p.fullEvents.Load()+1) }

// AddDrops counts n messages dropped by policy.
func (p *Producer) AddDrops(n uint64) { publish(p.drops, p.drops.Load()+n) }

// AddSpins counts n wait iterations.
func (p *Producer) AddSpins(n uint64) { publish(p.spins, p.spins.Load()+n) }

// Free returns the free space as last seen by the producer, refreshing its
// view of the consumer position.
func (p *Producer) Free() (uint64, error) {
	if p.err != nil {
		return 0, p.err
	}
	if err := p.reloadConsumer(); err != nil {
		return 0, err
	}
	return p.r.capacity - (p.pos - p.consCached), nil
}
