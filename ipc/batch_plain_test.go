package ipc_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
)

// TestBatchPlainLikeRead: on a plain SPSC ring, Batch reads through the
// ring's pull-style path (Next, EndBatch), Read and TryRead through its
// callback. Two such rings written alike, one drained with range loops
// over Batch that break at random, the other with TryRead of as many as
// each loop consumed, deliver the same messages (and Batch's Pos is the
// ring position past each) and leave the same positions, counters and
// high watermark after every step: messages of random sizes wrapping many
// times (padding records skipped, also when a Batch finds nothing else and
// its wait ends at its deadline), the ring filling up.
func TestBatchPlainLikeRead(t *testing.T) {
	mk := func(name string) (*ipc.Ring, *ipc.Producer, *ipc.Consumer) {
		r, err := ipc.Create(name, ipc.Config{Capacity: 4096, MaxMessage: 300})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
		require.NoError(t, err)
		c, err := r.Consumer(nil)
		require.NoError(t, err)
		return r, p, c
	}
	ra, pa, ca := mk(testutil.Name(t))
	rb, pb, cb := mk(testutil.Name(t))
	// A deadline already past: a Batch that finds nothing ends at once.
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	rng := rand.New(rand.NewPCG(7, 8))
	var seq uint64
	var gotA, gotB [][]byte
	empty := 0
	for step := range 5000 {
		if rng.IntN(3) != 0 {
			for range rng.IntN(12) {
				seq++
				m := make([]byte, rng.IntN(301))
				for i := range m {
					m[i] = byte(seq + uint64(i))
				}
				require.Equal(t, pb.TryWrite(m), pa.TryWrite(m), "step %d", step)
			}
		}
		most := 1 + rng.IntN(10)
		brk := -1 // the record whose body breaks
		if rng.IntN(3) == 0 {
			brk = rng.IntN(most)
		}
		k := 0
		last := stats(t, ra).ConsumerPos
		var loopErr error
		for rec, err := range ca.Batch(expired, most) {
			if err != nil {
				loopErr = err
				break
			}
			gotA = append(gotA, bytes.Clone(rec.Data))
			// Past the record (8-byte header, payload rounded up to 8),
			// and past the previous one or padding.
			require.GreaterOrEqual(t, rec.Pos-last, uint64(8+len(rec.Data)+7)&^7, "step %d", step)
			last = rec.Pos
			k++
			if k-1 == brk {
				break
			}
		}
		if k == 0 {
			require.ErrorIs(t, loopErr, context.DeadlineExceeded, "step %d", step)
			empty++
		} else {
			require.NoError(t, loopErr, "step %d", step)
			require.Equal(t, last, stats(t, ra).ConsumerPos, "step %d: the loop released up to its last record", step)
		}
		n, err := cb.TryRead(max(k, 1), func(m []byte) { gotB = append(gotB, bytes.Clone(m)) })
		require.NoError(t, err, "step %d", step)
		require.Equal(t, k, n, "step %d", step)
		sa, sb := stats(t, ra), stats(t, rb)
		require.Equal(t, sb.ConsumerPos, sa.ConsumerPos, "step %d", step)
		require.Equal(t, sb.ProducerPos, sa.ProducerPos, "step %d", step)
		require.Equal(t, sb.MsgsOut, sa.MsgsOut, "step %d", step)
		require.Equal(t, sb.BytesOut, sa.BytesOut, "step %d", step)
		require.Equal(t, sb.HighWater, sa.HighWater, "step %d", step)
	}
	require.Equal(t, gotB, gotA)
	require.Greater(t, empty, 100, "many loops found the ring empty")
	require.Greater(t, len(gotA), 5000)
}

// stats is r.Stats, which must succeed.
func stats(t *testing.T, r *ipc.Ring) ipc.Stats {
	s, err := r.Stats()
	require.NoError(t, err)
	return s
}
