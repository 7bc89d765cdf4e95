package ipc_test

import (
	"context"
	"fmt"
	"io/fs"
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

// Batch yields up to max records with their exact payloads, consumed as
// the loop goes: a break leaves the rest, in order, for the next call.
func TestBatchConsumesAsTheLoopGoes(t *testing.T) {
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

			seq, err := c.Batch(ctx, 4)
			require.NoError(t, err)
			next := 0
			for rec := range seq {
				require.Equal(t, msgN(next), rec.Data)
				next++
			}
			require.Equal(t, 4, next, "max bounds the batch")

			seq, err = c.Batch(ctx, 100)
			require.NoError(t, err)
			for rec := range seq {
				require.Equal(t, msgN(next), rec.Data)
				next++
				if next == 6 {
					break
				}
			}
			st, err := r.Stats()
			require.NoError(t, err)
			require.Equal(t, uint64(6), st.MsgsOut, "the records yielded, and only they, are consumed")

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

// The iterator yields once, and only until the next call on the Consumer.
func TestBatchIteratorValidity(t *testing.T) {
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
	count := func(seq func(func(ipc.Record) bool)) int {
		n := 0
		for range seq {
			n++
		}
		return n
	}

	seq, err := c.Batch(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, 2, count(seq))
	require.Zero(t, count(seq), "ranging it twice yields nothing the second time")

	seq, err = c.Batch(ctx, 2)
	require.NoError(t, err)
	n, err := c.TryRead(1, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Zero(t, count(seq), "a call on the Consumer ends the iterator")

	seq, err = c.Batch(ctx, 10)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.Zero(t, count(seq), "Close ends the iterator")
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(3), st.MsgsOut)
}

// Batch waits as Read does: until a message comes, or the context ends
// (an error matching context.DeadlineExceeded, and an iterator that yields
// nothing). Its argument checks are Read's.
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
	seq, err := c.Batch(ctx, 10)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	for range seq {
		t.Fatal("an iterator returned with an error yields nothing")
	}

	before, err := r.Stats()
	require.NoError(t, err)
	done := make(chan error, 1)
	var got []string
	go func() {
		seq, err := c.Batch(context.Background(), 10)
		for rec := range seq {
			got = append(got, string(rec.Data))
		}
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
	_, err = c.Batch(nil, 1)
	require.ErrorIs(t, err, fs.ErrInvalid)
	seq, err = c.Batch(context.Background(), 0)
	require.NoError(t, err)
	for range seq {
		t.Fatal("max 0 yields nothing")
	}
	require.NoError(t, c.Close())
	_, err = c.Batch(context.Background(), 1)
	require.ErrorIs(t, err, ipc.ErrClosed)
}

// In an MPSC ring, a message committed behind a live producer's
// uncommitted reservation is not ready: Batch waits, as Read does, rather
// than returning an empty batch at once; the commit releases both.
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
	_, err = c.Batch(short, 10)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	n := copy(buf, "first")
	require.NoError(t, a.Commit(n))
	seq, err := c.Batch(ctx, 10)
	require.NoError(t, err)
	var got []string
	for rec := range seq {
		got = append(got, string(rec.Data))
	}
	require.Equal(t, []string{"first", "behind"}, got)
}

// Batch and its loop allocate nothing per message: at most the range
// loop's body and state per batch (Go allocates them for an iterator a
// call returns).
func TestBatchAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 64 << 10})
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
			_ = p.Write(ctx, msg)
		}
		seq, err := c.Batch(ctx, 32)
		if err != nil {
			panic(err)
		}
		for rec := range seq {
			sum += len(rec.Data)
		}
	})
	require.Equal(t, 32*101*len(msg), sum)
	require.LessOrEqual(t, allocs, 2.0, "per batch of 32 (the range loop's body and state)")
}
