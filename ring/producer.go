// The producer: its words, resuming, counters, and its view of the
// consumer position.

package ring

import (
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

	lim             uint64         // the most bytes the ring holds without a window (capacity, less a word with header commit)
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

	// plain: a ring without sequences, timestamps or header commit, fixed
	// when the producer is made. fast: plain, SPSC, no claim outstanding and
	// no test hook (setFast keeps it): TryWrite and WriteBatch then take
	// their fast path (spsc.go), which does only what such a ring needs.
	// fastShared: the same for an MPSC ring, TryWrite's MPSC fast path
	// (tryWriteShared in mpsc.go).
	plain, fast, fastShared bool

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
	p.initFlow(word(r.region, offOverflowed))
	p.yields = word(r.region, offYields)
	if r.kind != SPSC {
		return nil, fmt.Errorf("ring: NewProducer is for spsc rings; an mpsc ring takes NewSlotProducer")
	}
	if err := p.initSeqs(offSeqBegun, offLastSeq); err != nil {
		return nil, err
	}
	pr, err := r.loadPositions(0)
	if err != nil {
		return nil, err
	}
	p.pos = pr.p
	if r.polled {
		if err := p.resumeCommitted(pr); err != nil {
			return nil, err
		}
	}
	if err := p.reloadConsumer(); err != nil {
		return nil, err
	}
	p.plain = !r.seqs && !r.ts && !r.polled
	p.setFast()
	return p, nil
}

// setFast recomputes p.fast and p.fastShared; called whenever a claim
// begins or ends or a test hook is set.
func (p *Producer) setFast() {
	f := p.plain && !p.claimed && p.hook == nil
	p.fast, p.fastShared = f && !p.mpsc, f && p.mpsc
}

// Slot returns the producer's slot (0 in SPSC rings).
func (p *Producer) Slot() int { return int(p.slot) }

// Err returns the sticky error that stopped the producer, if any.
func (p *Producer) Err() error { return p.err }

// Ring returns the ring this producer writes.
func (p *Producer) Ring() *Ring { return p.r }

// reloadConsumer loads and validates the consumer position.
func (p *Producer) reloadConsumer() error {
	// Acquire: pairs with the consumer's release store of its position
	// (Consumer.release): the space below it is read and may be reused.
	c := p.consPos.Load()
	// Our own position is the truth, so a consumer past it (which span
	// allows a header-commit ring's observers) is damage.
	depth, ahead, ok := p.r.span(p.pos, c)
	if !ok || ahead {
		p.err = corruptf(offConsumerPos, "consumer position %d is inconsistent with producer position %d (capacity %d)", c, p.pos, p.r.capacity)
		return p.err
	}
	p.consCached = c
	p.r.raiseHighWater(depth)
	return nil
}

func (p *Producer) count(msgs, bytes uint64) {
	if p.noCounters {
		return
	}
	add2(p.msgsIn, msgs, p.bytesIn, bytes)
}

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
