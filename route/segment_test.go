package route_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/route"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// segmentCounts is each ring's routing counters in its segment (line 12).
func segmentCounts(t *testing.T, rings []*ipc.Ring) []ops.RouteCounters {
	t.Helper()
	var out []ops.RouteCounters
	for _, r := range rings {
		c, err := ops.Routing(r)
		require.NoError(t, err)
		out = append(out, c)
	}
	return out
}

// The counters in the segment are the routers' own, summed: nothing
// reaches the segment before a flush (Send does not touch it), Close
// flushes all, and two routers' counts add up. Spills and skips included.
func TestSegmentCountersAfterClose(t *testing.T) {
	cfg := ipc.Config{Kind: ipc.MPSC, Capacity: 64 << 10, HighWater: 1024, LowWater: 512}
	rings := []*ipc.Ring{newRing(t, cfg), newRing(t, cfg), newRing(t, cfg)}
	attach(t, rings[0], rings[1]) // ring 2: no consumer, out of the rotation
	ctx := context.Background()

	// A round robin router passes ring 2 over.
	rr := newRouter(t, rings, &route.Config{By: route.RoundRobin, StallAfter: forever, Sample: time.Hour})
	for i := 0; i < 6; i++ {
		require.NoError(t, rr.Send(ctx, []byte("m")))
	}
	for i, c := range segmentCounts(t, rings) {
		require.True(t, c.IsZero(), "ring %d: no flush yet (the sampler's next is in an hour), so nothing in the segment: %+v", i, c)
	}
	// A by-key router with spill-over, ring 0 pressured: its key spills.
	fill(t, rings[0], 20, 56)
	key := keyOf(t, rings, 0)
	kr := newRouter(t, rings, &route.Config{By: route.ByKey, Spill: true, StallAfter: forever, Sample: time.Hour})
	for i := 0; i < 3; i++ {
		require.NoError(t, kr.SendKey(ctx, key, []byte("k")))
	}
	before := time.Now()
	require.NoError(t, rr.Close())
	require.NoError(t, kr.Close())

	a, b := rr.Stats(), kr.Stats()
	require.EqualValues(t, 3, b.Rings[0].Spilled)
	require.NotZero(t, a.Rings[2].Skipped)
	for i, c := range segmentCounts(t, rings) {
		require.Equal(t, a.Rings[i].Routed+b.Rings[i].Routed, c.Routed, "ring %d", i)
		require.Equal(t, a.Rings[i].Spilled+b.Rings[i].Spilled, c.Spilled, "ring %d", i)
		require.Equal(t, a.Rings[i].Skipped+b.Rings[i].Skipped, c.Skipped, "ring %d", i)
		if c.Routed+c.Spilled+c.Skipped > 0 {
			require.False(t, c.LastFlush.Before(before.Truncate(time.Second)), "ring %d: flushed at Close", i)
		}
	}
}

// keyOf finds a key that a ByKey router over rings sends to ring i (the
// router's own hash: FNV-1a modulo the number of rings).
func keyOf(t *testing.T, rings []*ipc.Ring, i int) []byte {
	t.Helper()
	for n := 0; ; n++ {
		k := []byte{byte(n), byte(n >> 8)}
		h := uint64(14695981039346656037)
		for _, b := range k {
			h ^= uint64(b)
			h *= 1099511628211
		}
		if int(h%uint64(len(rings))) == i {
			return k
		}
	}
}

// While a router runs, its sampler brings its counts to the segment.
func TestSegmentCountersWhileRunning(t *testing.T) {
	rings := []*ipc.Ring{newRing(t, ipc.Config{}), newRing(t, ipc.Config{})}
	attach(t, rings...)
	rt := newRouter(t, rings, &route.Config{By: route.RoundRobin, StallAfter: forever})
	for i := 0; i < 10; i++ {
		require.NoError(t, rt.Send(context.Background(), []byte("m")))
	}
	waitFor(t, "the segment shows 5 routed to each ring", func() bool {
		c := segmentCounts(t, rings)
		return c[0].Routed == 5 && c[1].Routed == 5
	})
}

// A co-tenant scribbling on line 12 while a router routes changes only the
// numbers shown: routing goes on as before (every message where the
// strategy puts it, the router's own counts exact), nothing panics, and
// ops.Routing reads whatever is there without an error.
func TestSegmentCountersScribbled(t *testing.T) {
	rings := []*ipc.Ring{newRing(t, ipc.Config{}), newRing(t, ipc.Config{})}
	cs := attach(t, rings...)
	rt := newRouter(t, rings, &route.Config{By: route.RoundRobin, StallAfter: forever, Sample: time.Millisecond})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range rings {
		f, err := os.OpenFile(r.Path(), os.O_RDWR, 0)
		require.NoError(t, err)
		t.Cleanup(func() { _ = f.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			var line [ring.LineSize]byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < len(line); i += 8 {
					binary.LittleEndian.PutUint64(line[i:], rand.Uint64()>>(rand.IntN(4)*16))
				}
				if _, err := f.WriteAt(line[:], shm.HeaderSize+12*ring.LineSize); err != nil {
					panic(err)
				}
				_, _ = ops.Routing(r) // any value reads
			}
		}()
	}
	const n = 2000
	for i := 0; i < n; i++ {
		require.NoError(t, rt.Send(context.Background(), []byte("m")))
		if i%100 == 99 {
			for _, c := range cs {
				_, err := c.TryRead(1000, func([]byte) {})
				require.NoError(t, err)
			}
		}
	}
	close(stop)
	wg.Wait()
	require.Equal(t, []uint64{n / 2, n / 2}, routed(rt))
	for i, r := range rings {
		st, err := r.Stats()
		require.NoError(t, err)
		require.EqualValues(t, n/2, st.MsgsIn, "ring %d", i)
		require.Equal(t, route.Healthy, rt.Stats().Rings[i].Health)
	}
	require.NoError(t, rt.Close())
	segmentCounts(t, rings)
}

// New over a ring it cannot take a producer on returns ipc's error (no
// panic) and releases the producers it took on the rings before it.
func TestNewBusyRing(t *testing.T) {
	rings := []*ipc.Ring{newRing(t, ipc.Config{}), newRing(t, ipc.Config{})}
	p, err := rings[1].Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	_, err = route.New(rings, nil)
	require.ErrorIs(t, err, ipc.ErrBusy)
	p0, err := rings[0].Producer(nil)
	require.NoError(t, err, "New released ring 0's producer")
	require.NoError(t, p0.Close())
}
