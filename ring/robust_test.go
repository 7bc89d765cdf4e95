package ring_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// noPanic runs f and turns a panic into a test failure naming what, so that
// one bad case fails the test instead of crashing the binary.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v\n%s", what, r, debug.Stack())
		}
	}()
	f()
}

// expectedErr reports whether err is an outcome a damaged ring may give:
// nil, ErrCorrupt, or an expected refusal (full, too large).
func expectedErr(err error) bool {
	return err == nil || errors.Is(err, ring.ErrCorrupt) || errors.Is(err, ring.ErrFull) || errors.Is(err, ring.ErrTooLarge)
}

// ringKinds are the five ring kinds: the SPSC ones with timestamps and
// sequences (the extras shift every payload), the MPSC ones without.
var ringKinds = []struct {
	name string
	cfg  ring.Config
}{
	{"spsc", ring.Config{Kind: ring.SPSC, Timestamps: true, Sequences: true}},
	{"spsc-header-commit", ring.Config{Kind: ring.SPSC, HeaderCommit: true, Sequences: true}},
	{"spsc-drop-oldest", ring.Config{Kind: ring.SPSC, Overwrite: true, Timestamps: true}},
	{"mpsc", ring.Config{Kind: ring.MPSC, Slots: 2, Sequences: true}},
	{"mpsc-drop-oldest", ring.Config{Kind: ring.MPSC, Slots: 2, Overwrite: true, Timestamps: true, Sequences: true}},
}

// TestDamagedControlWords writes bad values (unaligned, beyond capacity,
// behind, far ahead) into each control word a producer or consumer loads
// as a position, offset or length, in each ring kind holding a few
// records, and then runs every operation: open a producer, write, claim and
// commit, abort, batch, drop-oldest writes, open a consumer, read, recover,
// peek, stats. Each returns data or ErrCorrupt (or full); none panics
// (issue 12, defect 4: word() panicked in reserveShared, reclaimShared
// and resumeCommitted).
func TestDamagedControlWords(t *testing.T) {
	const capacity = 1 << 10
	words := []struct {
		name string
		off  func(r *ring.Ring) uint64
		mpsc bool // only in MPSC rings
	}{
		{"producer position", func(*ring.Ring) uint64 { return ring.OffProducerPos }, false},
		{"consumer position", func(*ring.Ring) uint64 { return ring.OffConsumerPos }, false},
		{"zeroing mark", func(*ring.Ring) uint64 { return ring.OffZeroEnd }, true},
		{"release lock", func(*ring.Ring) uint64 { return ring.OffReleaseLock }, true},
		{"slot 1 intent position", func(r *ring.Ring) uint64 { return r.SlotOffset(1) + ring.SlotIntentPos }, true},
		{"slot 1 intent length", func(r *ring.Ring) uint64 { return r.SlotOffset(1) + ring.SlotIntentLen }, true},
	}
	values := []struct {
		name string
		v    func(old uint64) uint64
	}{
		{"unaligned", func(old uint64) uint64 { return old + 3 }},
		{"unaligned behind", func(old uint64) uint64 { return old - 5 }},
		{"beyond capacity", func(old uint64) uint64 { return old + 4*capacity }},
		{"behind", func(old uint64) uint64 { return old - 2*capacity }},
		{"far ahead", func(old uint64) uint64 { return old + 1<<40 }},
		{"one record ahead", func(old uint64) uint64 { return old + 64 }},
		{"one record behind", func(old uint64) uint64 { return old - 64 }},
		{"all ones", func(uint64) uint64 { return ^uint64(0) }},
	}
	for _, kind := range ringKinds {
		for _, w := range words {
			if w.mpsc && kind.cfg.Kind != ring.MPSC {
				continue
			}
			for _, v := range values {
				for _, state := range []string{"pending", "claim-outstanding", "drained"} {
					t.Run(fmt.Sprintf("%s/%s/%s/%s", kind.name, w.name, v.name, state), func(t *testing.T) {
						cfg := kind.cfg
						cfg.Capacity, cfg.MaxMessage = capacity, 100
						region, r := formatRing(t, cfg)
						damageAndRun(t, region, r, w.off(r), v.v, state)
					})
				}
			}
		}
	}
}

// newProducer opens the producer of r (slot 0 in MPSC rings).
func newProducer(r *ring.Ring) (*ring.Producer, error) {
	if r.Kind() == ring.MPSC {
		return r.NewSlotProducer(0)
	}
	return r.NewProducer()
}

// damageAndRun writes a few records into r and reads some, so that the
// positions are not at 0 (state "pending"; "drained": reads them all;
// "claim-outstanding": leaves an MPSC claim open), stores bad(old) at
// region offset off, and runs every operation on the damaged ring.
func damageAndRun(t *testing.T, region []byte, r *ring.Ring, off uint64, bad func(uint64) uint64, state string) {
	p, err := newProducer(r)
	require.NoError(t, err)
	c, err := r.NewConsumer()
	require.NoError(t, err)
	msg := make([]byte, 40)
	for i := 0; i < 12; i++ {
		require.NoError(t, p.TryWrite(msg))
	}
	_, err = c.ReadBatch(5, func([]byte) {})
	require.NoError(t, err)
	if r.Kind() == ring.MPSC {
		// Slot 1's intent covers a real reservation.
		p1, err := r.NewSlotProducer(1)
		require.NoError(t, err)
		require.NoError(t, p1.TryWrite(msg))
		if state == "claim-outstanding" {
			_, err := p1.Claim(30)
			require.NoError(t, err)
		}
	}
	if state == "drained" {
		_, err = c.ReadBatch(100, func([]byte) {})
		require.NoError(t, err)
	}
	binary.LittleEndian.PutUint64(region[off:], bad(binary.LittleEndian.Uint64(region[off:])))

	check := func(what string, err error) {
		t.Helper()
		if !expectedErr(err) {
			t.Errorf("%s: unexpected error %v", what, err)
		}
	}
	noPanic(t, "stats", func() { _ = r.Stats() })
	noPanic(t, "peek", func() {
		recs, err := r.Peek(1000)
		check("peek", err)
		for _, rec := range recs {
			require.LessOrEqual(t, uint64(len(rec.Payload)), r.MaxMessage())
		}
	})
	// A new producer (as if the old one had died), then the one that was
	// already running (as if it had been running all along; in SPSC rings
	// they now write the same ring, which is just more damage).
	for round, open := range []func() (*ring.Producer, error){
		func() (*ring.Producer, error) { return newProducer(r) },
		func() (*ring.Producer, error) { return p, nil },
	} {
		var q *ring.Producer
		noPanic(t, "open producer", func() {
			var err error
			q, err = open()
			check("open producer", err)
		})
		if q == nil {
			continue
		}
		noPanic(t, fmt.Sprintf("producer %d operations", round), func() {
			for i := 0; i < 30; i++ {
				check("write", q.TryWrite(msg))
				b, err := q.Claim(20)
				check("claim", err)
				if err == nil {
					copy(b, "claimed")
					if i%2 == 0 {
						check("commit", q.CommitN(7))
					} else {
						q.Abort()
					}
				}
				_, err = q.WriteBatch([][]byte{msg, msg[:8], msg[:30]})
				check("batch", err)
				if r.Overwrite() {
					_, err = q.TryWriteOverwrite(msg)
					check("write over", err)
				}
				_, err = q.Free()
				check("free", err)
			}
		})
	}
	noPanic(t, "consumer", func() {
		for round := 0; round < 2; round++ {
			cons := c
			if round == 1 {
				var err error
				cons, err = r.NewConsumer()
				check("open consumer", err)
				if err != nil {
					return
				}
			}
			for i := 0; i < 100; i++ {
				n, err := cons.ReadBatch(7, func(m []byte) {
					require.LessOrEqual(t, uint64(len(m)), r.MaxMessage())
				})
				check("read", err)
				if err != nil {
					break
				}
				if n == 0 {
					if !cons.Blocked() {
						break
					}
					_, err := recoverWith(t, cons, func(int) bool { return false })
					check("recover", err)
				}
			}
			_ = cons.SkipPadding()
			_, err := cons.Pending()
			check("pending", err)
		}
	})
	noPanic(t, "stats after", func() { _ = r.Stats() })
	noPanic(t, "peek after", func() { _, err := r.Peek(1000); check("peek after", err) })
}

// TestHeaderCommitConsumerPastProducer: in a header-commit ring, a producer
// that commits records and dies before its position store leaves the
// consumer, once it has read them, past the producer position: up to
// capacity-8 bytes past it (docs/layout.md, "Header-commit rings"). That
// state is legal: a new consumer opens, Peek and Stats read it (depth 0),
// and a new producer resumes after the records. One byte-count more is
// damage (issue 12, defect 3).
func TestHeaderCommitConsumerPastProducer(t *testing.T) {
	const capacity = 1 << 10
	for _, start := range []uint64{0, ^uint64(0) - 511} { // and through 2^64
		t.Run(fmt.Sprint("start ", start), func(t *testing.T) {
			p, c, region := newRingAt(t, capacity, 120, start&^7, headerCommit)
			r := c.Ring()
			// 1016 bytes (capacity-8, the most the ring holds) of records
			// committed by a producer that dies before storing its
			// position: 14 records of 64 bytes and one of 120.
			msg := make([]byte, 56)
			var sent []string
			for i := 0; i < 15; i++ {
				m := msg
				if i == 14 {
					m = make([]byte, 112)
				}
				copy(m, fmt.Sprint("dead", i))
				require.NoError(t, ring.CommitDying(p, m))
				sent = append(sent, string(m))
			}
			P := r.Stats().ProducerPos
			require.Equal(t, start&^7, P, "nothing published")
			var got []string
			n, err := c.ReadBatch(100, func(m []byte) { got = append(got, string(m)) })
			require.NoError(t, err)
			require.Equal(t, 15, n)
			require.Equal(t, sent, got)
			st := r.Stats()
			require.Equal(t, uint64(capacity-8), st.ConsumerPos-st.ProducerPos, "the consumer is capacity-8 past the producer position")
			require.Zero(t, st.Depth)

			// Every reader accepts the state.
			c2, err := r.NewConsumer()
			require.NoError(t, err, "a consumer opens")
			recs, err := r.Peek(100)
			require.NoError(t, err, "peek")
			require.Empty(t, recs)
			p2, err := r.NewProducer()
			require.NoError(t, err, "a producer resumes")
			require.Equal(t, st.ConsumerPos, r.Stats().ProducerPos, "after the dead producer's records")
			require.NoError(t, p2.TryWrite([]byte("after")))
			recs, err = r.Peek(100)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			got = got[:0]
			_, err = c2.ReadBatch(100, func(m []byte) { got = append(got, string(m)) })
			require.NoError(t, err)
			require.Equal(t, []string{"after"}, got)

			// One word further is damage, for every reader.
			require.NoError(t, ring.CommitDying(p2, []byte("x")))
			_, err = c2.ReadBatch(100, func([]byte) {})
			require.NoError(t, err)
			cpos := r.Stats().ConsumerPos
			binary.LittleEndian.PutUint64(region[ring.OffProducerPos:], cpos-capacity)
			_, err = r.NewConsumer()
			require.ErrorIs(t, err, ring.ErrCorrupt)
			_, err = r.Peek(10)
			require.ErrorIs(t, err, ring.ErrCorrupt)
			_, err = r.NewProducer()
			require.ErrorIs(t, err, ring.ErrCorrupt)
			binary.LittleEndian.PutUint64(region[ring.OffProducerPos:], cpos-capacity+8)
			_, err = r.NewConsumer()
			require.NoError(t, err, "capacity-8 past")
			_, err = r.Peek(10)
			require.NoError(t, err)
		})
	}
}

// TestHeaderCommitBatchBound: a header-commit producer whose batch runs
// into a full ring stores its position before it loads the consumer's, so
// the consumer, reading the batch as it is committed, is never more than
// capacity-8 bytes past the stored producer position: the bound a reader
// of a dead producer's ring relies on. The consumer checks it at every
// record it reads, while the producer writes batches many times the
// ring's size.
func TestHeaderCommitBatchBound(t *testing.T) {
	const capacity, msgs = 1 << 10, 20_000
	p, c, region := newRing(t, capacity, 120, headerCommit)
	var stop atomic.Bool
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		batch := make([][]byte, 256) // 32 KiB of 128-byte records
		for i := range batch {
			batch[i] = make([]byte, 120)
		}
		for sent := 0; sent < msgs && !stop.Load(); {
			n, err := p.WriteBatch(batch[:min(len(batch), msgs-sent)])
			if err != nil && !errors.Is(err, ring.ErrFull) {
				werr = err
				return
			}
			sent += n
		}
	}()
	defer func() { stop.Store(true); <-done }()
	end, worst := uint64(0), uint64(0) // the end of the record being read: 128-byte records, no padding
	for got, finished := 0, false; got < msgs; {
		n, err := c.ReadBatch(4, func([]byte) {
			end += 128
			if ahead := end - ring.LoadWord(region, ring.OffProducerPos); int64(ahead) > 0 {
				worst = max(worst, ahead)
			}
		})
		require.NoError(t, err)
		require.LessOrEqual(t, worst, uint64(capacity-8), "the consumer read that far past the stored producer position")
		got += n
		if n == 0 {
			if finished {
				break // the producer stopped (an error, reported below)
			}
			select {
			case <-done:
				finished = true // read once more, then stop
			default:
			}
		}
	}
	<-done
	require.NoError(t, werr)
	t.Logf("the consumer read at most %d bytes past the stored producer position", worst)
}

// TestTypeZeroHeaderIsCorrupt: producers store whole headers, so a header
// of type 0 (none) that is not the zero word is damage: an MPSC consumer
// took it for a reservation not yet written and waited for ever (and
// Doctor's repair looped on it); a header-commit consumer took it for the
// end of the records. Every reader returns ErrCorrupt.
func TestTypeZeroHeaderIsCorrupt(t *testing.T) {
	for _, kind := range ringKinds {
		t.Run(kind.name, func(t *testing.T) {
			cfg := kind.cfg
			cfg.Capacity, cfg.MaxMessage = 1<<10, 100
			region, r := formatRing(t, cfg)
			p, err := newProducer(r)
			require.NoError(t, err)
			c, err := r.NewConsumer()
			require.NoError(t, err)
			require.NoError(t, p.TryWrite([]byte("one")))
			require.NoError(t, p.TryWrite([]byte("two")))
			_, err = c.ReadBatch(1, func([]byte) {})
			require.NoError(t, err)
			// The header of "two", at the consumer position.
			st := r.Stats()
			off := r.DataOffset() + st.ConsumerPos&(st.Capacity-1)
			binary.LittleEndian.PutUint64(region[off:], 5) // type 0, length 5
			_, err = r.Peek(10)
			require.ErrorIs(t, err, ring.ErrCorrupt, "peek")
			_, err = c.ReadBatch(10, func([]byte) {})
			require.ErrorIs(t, err, ring.ErrCorrupt, "read")
			if r.Kind() == ring.MPSC {
				c2, err := r.NewConsumer()
				require.NoError(t, err)
				_, err = recoverWith(t, c2, func(int) bool { return false })
				require.ErrorIs(t, err, ring.ErrCorrupt, "recover")
			}
			if r.HeaderCommit() {
				// A producer resuming along the chain of records past the
				// published position meets it too.
				require.NoError(t, ring.CommitDying(p, []byte("three")))
				_, err = r.NewProducer()
				require.NoError(t, err)
				P := r.Stats().ProducerPos
				require.NoError(t, ring.CommitDying(p, []byte("four")))
				binary.LittleEndian.PutUint64(region[r.DataOffset()+P&(st.Capacity-1):], 5)
				_, err = r.NewProducer()
				require.ErrorIs(t, err, ring.ErrCorrupt, "resume")
			}
		})
	}
}

// TestHeaderCommitDeadProducerIPC: the state a header-commit producer
// leaves when it dies between committing records and storing its position
// (made by the real write path, stopped there by CommitDying), in a real
// segment, read through package ipc: the consumer that read the records,
// Stats, Peek, Doctor and its repair, a new consumer and a new producer
// all accept it (issue 12, defect 3: Doctor said "positions valid", then
// "corrupt segment"; a new consumer failed).
func TestHeaderCommitDeadProducerIPC(t *testing.T) {
	ir, err := ipc.Create("hc", ipc.Config{Capacity: 1 << 12, MaxMessage: 256, HeaderCommit: true}, ipc.WithDir(t.TempDir()))
	require.NoError(t, err)
	defer ir.Close()
	c, err := ir.Consumer(nil)
	require.NoError(t, err)
	seg, err := shm.Open(ir.Path())
	require.NoError(t, err)
	defer seg.Close()
	r, err := ring.Attach(seg.Body())
	require.NoError(t, err)
	p, err := r.NewProducer()
	require.NoError(t, err)
	require.NoError(t, p.TryWrite([]byte("stored")))
	for i := 0; i < 20; i++ { // 20 records of 160 bytes committed, the position never stored
		m := make([]byte, 150)
		m[0] = byte(i)
		require.NoError(t, ring.CommitDying(p, m))
	}
	n, err := c.TryRead(100, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 21, n)
	st, err := ir.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(20*160), st.ConsumerPos-st.ProducerPos, "the consumer is past the producer position")
	require.Zero(t, st.Depth)
	recs, err := ops.Peek(ir, 100)
	require.NoError(t, err)
	require.Empty(t, recs)
	d, err := ops.Doctor(ir, false)
	require.NoError(t, err)
	require.True(t, d.Healthy(), "%v", d.Problems)
	require.NoError(t, c.Close())
	d, err = ops.Doctor(ir, true)
	require.NoError(t, err)
	require.True(t, d.Healthy(), "%v", d.Problems)
	c, err = ir.Consumer(nil)
	require.NoError(t, err, "a new consumer opens")
	defer c.Close()
	ip, err := ir.Producer(nil)
	require.NoError(t, err, "a new producer opens")
	defer ip.Close()
	require.NoError(t, ip.Write(context.Background(), []byte("next")))
	var got []string
	_, err = c.TryRead(100, func(m []byte) { got = append(got, string(m)) })
	require.NoError(t, err)
	require.Equal(t, []string{"next"}, got)
}

// TestHeaderCommitBatchStoresBeforeReload: the bound of
// TestHeaderCommitBatchBound, deterministically: a batch of 64 records (8
// times the ring) written while the consumer reads everything committed
// after each record. The consumer is never more than capacity-8 bytes past
// the stored producer position; without the store before each reload it
// was up to the whole batch past it.
func TestHeaderCommitBatchStoresBeforeReload(t *testing.T) {
	const capacity = 1 << 10
	p, c, region := newRing(t, capacity, 120, headerCommit)
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = make([]byte, 120) // 128-byte records
	}
	worst := uint64(0)
	n, err := ring.WriteBatchReading(p, batch, func() {
		_, err := c.ReadBatch(100, func([]byte) {})
		require.NoError(t, err)
		if ahead := ring.LoadWord(region, ring.OffConsumerPos) - ring.LoadWord(region, ring.OffProducerPos); int64(ahead) > 0 {
			worst = max(worst, ahead)
		}
	})
	require.NoError(t, err)
	require.Equal(t, len(batch), n)
	require.LessOrEqual(t, worst, uint64(capacity-8), "the consumer was that far past the stored producer position")
	require.Positive(t, worst, "the consumer read past the stored position")
}
