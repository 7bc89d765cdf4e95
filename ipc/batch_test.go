package ipc_test

import (
	"context"
	"fmt"
	"io/fs"
	"iter"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
)

// batchRings are the ring layouts whose read paths differ: Batch must give
// the same records from each.
var batchRings = []struct {
	name string
	cfg  ipc.Config
}{
	{"spsc", ipc.Config{Capacity: 4096}},
	{"spsc header commit", ipc.Config{Capacity: 4096, HeaderCommit: true}},
	{"spsc drop oldest", ipc.Config{Capacity: 4096, DropOldest: true}},
	{"mpsc", ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 4096}},
	{"mpsc drop oldest", ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 4096, DropOldest: true}},
	{"spsc sequences timestamps", ipc.Config{Capacity: 4096, Sequences: true, Timestamps: true}},
}

func msgN(i int) []byte { return []byte(fmt.Sprintf("message %02d", i)) }

// drainBatch ranges seq to its end and returns the payloads it yielded,
// copied, and the error it yielded, if any (the last step when there is one).
func drainBatch(t testing.TB, seq iter.Seq2[ipc.Record, error]) ([]string, error) {
	var got []string
	var gotErr error
	for rec, err := range seq {
		if err != nil {
			require.Nil(t, gotErr, "an error ends the iteration")
			require.Empty(t, rec.Data, "an error comes with an empty Record")
			gotErr = err
			continue
		}
		require.Nil(t, gotErr, "nothing follows an error")
		got = append(got, string(rec.Data))
	}
	return got, gotErr
}

// batchErr ranges c.Batch(ctx, max) and returns the error it yielded.
func batchErr(c *ipc.Consumer, ctx context.Context, max int) error {
	for _, err := range c.Batch(ctx, max) {
		if err != nil {
			return err
		}
	}
	return nil
}

// Batch yields up to max records with their exact payloads, and consumes
// what the loop saw when it ends: a break consumes the record whose body
// broke and leaves the rest, in order, for the next call.
func TestBatchConsumesWhatTheLoopSaw(t *testing.T) {
	for _, tc := range batchRings {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ipc.Create(testutil.Name(t), tc.cfg)
			require.NoError(t, err)
			defer r.Close()
			p, err := r.Producer(nil)
			require.NoError(t, err)
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			ctx := context.Background()
			for i := range 10 {
				require.NoError(t, p.Write(ctx, msgN(i)))
			}

			next := 0
			for rec, err := range c.Batch(ctx, 4) {
				require.NoError(t, err)
				require.Equal(t, msgN(next), rec.Data)
				next++
			}
			require.Equal(t, 4, next, "max bounds the batch")

			for rec, err := range c.Batch(ctx, 100) {
				require.NoError(t, err)
				require.Equal(t, msgN(next), rec.Data)
				next++
				if next == 6 {
					break
				}
			}
			st, err := r.Stats()
			require.NoError(t, err)
			require.Equal(t, uint64(6), st.MsgsOut, "the records yielded, the one whose body broke included, and only they, are consumed")

			n, err := c.TryRead(100, func(m []byte) {
				require.Equal(t, msgN(next), m, "the rest stays, in order")
				next++
			})
			require.NoError(t, err)
			require.Equal(t, 4, n)
			require.Equal(t, 10, next)
		})
	}
}

// The messages a loop saw are released with one position store when the
// loop ends, not one each: the consumer position in the segment holds
// still while the loop runs, so every Data stays valid until the loop
// ends (drop-oldest rings excepted: their consumer releases each record
// before delivering a copy of it).
func TestBatchReleasesOnceWhenTheLoopEnds(t *testing.T) {
	for _, tc := range batchRings {
		if tc.cfg.DropOldest {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			r, err := ipc.Create(testutil.Name(t), tc.cfg)
			require.NoError(t, err)
			defer r.Close()
			p, err := r.Producer(nil)
			require.NoError(t, err)
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			ctx := context.Background()
			for i := range 10 {
				require.NoError(t, p.Write(ctx, msgN(i)))
			}
			stats := func() ipc.Stats {
				st, err := r.Stats()
				require.NoError(t, err)
				return st
			}

			next := 0
			for _, brk := range []int{-1, 2} { // the whole batch of 6; a break at the 3rd
				before := stats()
				first := next
				var seen [][]byte
				for rec, err := range c.Batch(ctx, 6) {
					require.NoError(t, err)
					require.Equal(t, before.ConsumerPos, stats().ConsumerPos, "nothing is released while the loop runs")
					seen = append(seen, rec.Data) // zero-copy
					for i, d := range seen {
						require.Equal(t, msgN(first+i), d, "every Data stays valid while the loop runs")
					}
					next++
					if len(seen)-1 == brk {
						break
					}
				}
				after := stats()
				require.Equal(t, uint64(len(seen)), after.MsgsOut-before.MsgsOut)
				if next == 10 {
					require.Equal(t, after.ProducerPos, after.ConsumerPos, "the loop's end released everything it saw")
				} else {
					require.Greater(t, after.ConsumerPos, before.ConsumerPos, "the loop's end released what it saw")
				}
			}
			require.Equal(t, 9, next)
			got, err := drainBatch(t, c.Batch(ctx, 6))
			require.NoError(t, err)
			require.Equal(t, []string{string(msgN(9))}, got, "a break consumed the record whose body broke, and only it")
			require.Equal(t, stats().ProducerPos, stats().ConsumerPos)
		})
	}
}

// Each range of the iterator Batch returns is a batch of its own: ranging
// it twice reads two batches, waiting again; after Close, ranging yields
// ErrClosed. (Before, the iterator was armed by the Batch call and yielded
// only once, and only until the next call on the Consumer.)
func TestBatchRangedTwice(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 4096})
	require.NoError(t, err)
	defer r.Close()
	p, err := r.Producer(nil)
	require.NoError(t, err)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 6 {
		require.NoError(t, p.Write(ctx, msgN(i)))
	}

	seq := c.Batch(ctx, 2)
	got, err := drainBatch(t, seq)
	require.NoError(t, err)
	require.Equal(t, []string{"message 00", "message 01"}, got)
	got, err = drainBatch(t, seq)
	require.NoError(t, err)
	require.Equal(t, []string{"message 02", "message 03"}, got, "a second range reads the next batch")

	n, err := c.TryRead(1, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got, err = drainBatch(t, seq)
	require.NoError(t, err)
	require.Equal(t, []string{"message 05"}, got, "other calls in between are fine")

	require.NoError(t, c.Close())
	got, err = drainBatch(t, seq)
	require.ErrorIs(t, err, ipc.ErrClosed, "Close ends the iterator")
	require.Empty(t, got)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(6), st.MsgsOut)
}

// Batch waits as Read does: until a message comes, or the context ends
// (an error matching context.DeadlineExceeded, yielded once with an empty
// Record). Its argument checks are Read's, yielded the same way.
func TestBatchWaits(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 4096})
	require.NoError(t, err)
	defer r.Close()
	p, err := r.Producer(nil)
	require.NoError(t, err)
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	got, err := drainBatch(t, c.Batch(ctx, 10))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, got, "a wait that ends yields only its error")

	before, err := r.Stats()
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		var err error
		got, err = drainBatch(t, c.Batch(context.Background(), 10))
		done <- err
	}()
	// Write once the consumer sleeps, so that the write wakes it.
	for deadline := time.Now().Add(time.Minute); ; {
		st, err := r.Stats()
		require.NoError(t, err)
		if st.ConsumerParks > before.ConsumerParks {
			break
		}
		require.True(t, time.Now().Before(deadline), "the consumer never parked")
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, p.Write(context.Background(), []byte("wake up")))
	require.NoError(t, <-done)
	require.Equal(t, []string{"wake up"}, got)

	//lint:ignore SA1012 a nil context is what is tested
	got, err = drainBatch(t, c.Batch(nil, 1))
	require.ErrorIs(t, err, fs.ErrInvalid)
	require.Empty(t, got)
	got, err = drainBatch(t, c.Batch(context.Background(), 0))
	require.NoError(t, err)
	require.Empty(t, got, "max 0 yields nothing")
	require.NoError(t, c.Close())
	_, err = drainBatch(t, c.Batch(context.Background(), 1))
	require.ErrorIs(t, err, ipc.ErrClosed)
}

// A body that stops at the error it was yielded ends the loop cleanly, and
// one that keeps ranging after it sees nothing more: the error is yielded
// once. (drainBatch checks the second; this checks that a break at the
// error does not make the iterator call yield again, which would panic.)
func TestBatchErrorBreak(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 4096})
	require.NoError(t, err)
	defer r.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	steps := 0
	for _, err := range c.Batch(ctx, 4) {
		steps++
		require.ErrorIs(t, err, context.Canceled)
		break
	}
	require.Equal(t, 1, steps)
}

// In an MPSC ring, a message committed behind a live producer's
// uncommitted reservation is not ready: Batch waits, as Read does, rather
// than ending at once with an empty batch; the commit releases both.
func TestBatchWaitsAtALiveReservation(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 4096})
	require.NoError(t, err)
	defer r.Close()
	a, err := r.Producer(nil)
	require.NoError(t, err)
	b, err := r.Producer(nil)
	require.NoError(t, err)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	ctx := context.Background()

	buf, err := a.Claim(ctx, 16)
	require.NoError(t, err)
	require.NoError(t, b.Write(ctx, []byte("behind")))

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	got, err := drainBatch(t, c.Batch(short, 10))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, got)

	n := copy(buf, "first")
	require.NoError(t, a.Commit(n))
	got, err = drainBatch(t, c.Batch(ctx, 10))
	require.NoError(t, err)
	require.Equal(t, []string{"first", "behind"}, got)
}

// The Record carries what the ring's records do: Seq with sequences, Slot
// in MPSC (the producer slot in the header), Time with timestamps (Unix
// ns), each 0 where the ring does not record it; the same from every read
// path (plain, header commit, MPSC, drop-oldest's copies).
func TestBatchRecordFields(t *testing.T) {
	rings := []struct {
		name string
		cfg  ipc.Config
	}{
		{"spsc", ipc.Config{Capacity: 4096}},
		{"spsc sequences timestamps", ipc.Config{Capacity: 4096, Sequences: true, Timestamps: true}},
		{"spsc header commit sequences", ipc.Config{Capacity: 4096, HeaderCommit: true, Sequences: true}},
		{"spsc drop oldest sequences timestamps", ipc.Config{Capacity: 4096, DropOldest: true, Sequences: true, Timestamps: true}},
		{"mpsc", ipc.Config{Kind: ipc.MPSC, Producers: 3, Capacity: 4096}},
		{"mpsc sequences timestamps", ipc.Config{Kind: ipc.MPSC, Producers: 3, Capacity: 4096, Sequences: true, Timestamps: true}},
		{"mpsc drop oldest sequences", ipc.Config{Kind: ipc.MPSC, Producers: 3, Capacity: 4096, DropOldest: true, Sequences: true}},
	}
	for _, tc := range rings {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ipc.Create(testutil.Name(t), tc.cfg)
			require.NoError(t, err)
			defer r.Close()
			ctx := context.Background()
			mpsc := tc.cfg.Kind == ipc.MPSC
			var ps []*ipc.Producer
			ids := []int{1}
			if mpsc {
				ids = []int{2, 3} // slots 1 and 2
			}
			for _, id := range ids {
				p, err := r.Producer(&ipc.ProducerConfig{ID: id})
				require.NoError(t, err)
				ps = append(ps, p)
			}
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			t0 := time.Now()
			for i := range 6 {
				require.NoError(t, ps[i%len(ps)].Write(ctx, msgN(i)))
			}
			i := 0
			var pos uint64
			for rec, err := range c.Batch(ctx, 10) {
				require.NoError(t, err)
				require.Equal(t, msgN(i), rec.Data)
				require.Greater(t, rec.Pos, pos, "record %d: Pos, past the record, grows", i)
				pos = rec.Pos
				wantSlot, wantSeq := 0, uint64(0)
				if mpsc {
					wantSlot = ids[i%len(ids)] - 1
				}
				if tc.cfg.Sequences {
					wantSeq = uint64(i/len(ps) + 1) // each producer's own, from 1
				}
				require.Equal(t, wantSlot, rec.Slot, "record %d", i)
				require.Equal(t, wantSeq, rec.Seq, "record %d", i)
				if tc.cfg.Timestamps {
					// Commit times, converted to Unix ns: between a little
					// before the writes and now (a second's slack for the
					// clocks' offset being read at another moment).
					require.GreaterOrEqual(t, rec.Time, t0.Add(-time.Second).UnixNano(), "record %d", i)
					require.LessOrEqual(t, rec.Time, time.Now().Add(time.Second).UnixNano(), "record %d", i)
				} else {
					require.Zero(t, rec.Time)
				}
				i++
			}
			require.Equal(t, 6, i)
			st, err := r.Stats()
			require.NoError(t, err)
			require.Equal(t, st.ProducerPos, pos, "the last record ends at the producer position")
		})
	}
}

// A range loop over Batch allocates nothing: Batch inlines, so the
// iterator, its body and their state stay on the caller's stack; nothing
// per message either.
func TestBatchAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, tc := range batchRings {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ipc.Create(testutil.Name(t), tc.cfg)
			require.NoError(t, err)
			defer r.Close()
			p, err := r.Producer(nil)
			require.NoError(t, err)
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			ctx := context.Background()
			msg := []byte("sixteen bytes!!!")
			var sum int
			allocs := testing.AllocsPerRun(100, func() {
				for range 32 {
					if err := p.Write(ctx, msg); err != nil {
						panic(err)
					}
				}
				for rec, err := range c.Batch(ctx, 32) {
					if err != nil {
						panic(err)
					}
					sum += len(rec.Data)
				}
			})
			require.Equal(t, 32*101*len(msg), sum)
			require.Zero(t, allocs, "per batch of 32")
		})
	}
}
