package route_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/route"
	"github.com/stretchr/testify/require"
)

// forever is a StallAfter no test reaches: rings whose consumer does not
// read stay in the rotation.
const forever = time.Hour

// newRing creates a ring as cfg says, closed when t ends.
func newRing(t *testing.T, cfg ipc.Config) *ipc.Ring {
	t.Helper()
	r, err := ipc.Create(testutil.Name(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// attach takes each ring's consumer role (not reading), released when t
// ends.
func attach(t *testing.T, rings ...*ipc.Ring) []*ipc.Consumer {
	t.Helper()
	cs := make([]*ipc.Consumer, len(rings))
	for i, r := range rings {
		c, err := r.Consumer(nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		cs[i] = c
	}
	return cs
}

// fill writes n messages of size bytes into r with a producer of its own,
// closed before the router takes the role.
func fill(t *testing.T, r *ipc.Ring, n, size int) {
	t.Helper()
	p, err := r.Producer(nil)
	require.NoError(t, err)
	for i := 0; i < n; i++ {
		require.NoError(t, p.TryWrite(make([]byte, size)))
	}
	require.NoError(t, p.Close())
}

func newRouter(t *testing.T, rings []*ipc.Ring, cfg *route.Config) *route.Router {
	t.Helper()
	rt, err := route.New(rings, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rt.Close()) })
	return rt
}

func routed(rt *route.Router) []uint64 {
	var out []uint64
	for _, s := range rt.Stats().Rings {
		out = append(out, s.Routed)
	}
	return out
}

// waitFor polls cond until it holds; the deadline only fails a stuck test.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > time.Minute {
			t.Fatalf("%s: not after a minute", what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func TestLeastDepthPicksShallowest(t *testing.T) {
	rings := []*ipc.Ring{newRing(t, ipc.Config{}), newRing(t, ipc.Config{}), newRing(t, ipc.Config{})}
	attach(t, rings...)
	// 56-byte payloads: 64-byte records, no padding. Depths 5, 1, 3 records.
	fill(t, rings[0], 5, 56)
	fill(t, rings[1], 1, 56)
	fill(t, rings[2], 3, 56)
	// One sample, New's: the depths are the router's estimates from then on.
	rt := newRouter(t, rings, &route.Config{StallAfter: forever, Sample: time.Hour})
	msg := make([]byte, 56)
	ctx := context.Background()

	// Ring 1 is the shallowest until it has 3 records like ring 2.
	require.NoError(t, rt.Send(ctx, msg))
	require.NoError(t, rt.Send(ctx, msg))
	require.Equal(t, []uint64{0, 2, 0}, routed(rt))
	// Then 1 and 2 share, equal depths taken in turn, until both have 5.
	for i := 0; i < 4; i++ {
		require.NoError(t, rt.Send(ctx, msg))
	}
	require.Equal(t, []uint64{0, 4, 2}, routed(rt), "ring 0 (5 records deep) gets nothing while others are shallower")
	// Now all three hold 5: in turn.
	for i := 0; i < 3; i++ {
		require.NoError(t, rt.Send(ctx, msg))
	}
	require.Equal(t, []uint64{1, 5, 3}, routed(rt))
	// The estimates were the rings' depths.
	for i, r := range rings {
		st, err := r.Stats()
		require.NoError(t, err)
		require.EqualValues(t, 6*64, st.Depth, "ring %d", i)
	}
}

func TestRoundRobinSkipsPressured(t *testing.T) {
	cfg := ipc.Config{Capacity: 64 << 10, HighWater: 1024, LowWater: 512}
	rings := []*ipc.Ring{newRing(t, cfg), newRing(t, cfg), newRing(t, cfg)}
	attach(t, rings...)
	fill(t, rings[1], 20, 56) // 1280 bytes: past the high level
	rt := newRouter(t, rings, &route.Config{By: route.RoundRobin, StallAfter: forever})
	require.True(t, rt.Stats().Rings[1].Pressured)
	msg := make([]byte, 8)
	for i := 0; i < 6; i++ {
		require.NoError(t, rt.Send(context.Background(), msg))
	}
	require.Equal(t, []uint64{3, 0, 3}, routed(rt), "the pressured ring is passed over while others have room")

}

// When every ring is pressured, round robin still uses them all.
func TestRoundRobinAllPressured(t *testing.T) {
	cfg := ipc.Config{Capacity: 64 << 10, HighWater: 1024, LowWater: 512}
	rings := []*ipc.Ring{newRing(t, cfg), newRing(t, cfg), newRing(t, cfg)}
	attach(t, rings...)
	for _, r := range rings {
		fill(t, r, 20, 56)
	}
	rt := newRouter(t, rings, &route.Config{By: route.RoundRobin, StallAfter: forever})
	for i := 0; i < 6; i++ {
		require.NoError(t, rt.Send(context.Background(), []byte("x")))
	}
	require.Equal(t, []uint64{2, 2, 2}, routed(rt))
}

func TestRoundRobinSkipsDead(t *testing.T) {
	rings := []*ipc.Ring{newRing(t, ipc.Config{}), newRing(t, ipc.Config{}), newRing(t, ipc.Config{})}
	attach(t, rings[0], rings[2]) // ring 1 has no consumer
	rt := newRouter(t, rings, &route.Config{By: route.RoundRobin, StallAfter: forever})
	require.Equal(t, route.Dead, rt.Stats().Rings[1].Health)
	for i := 0; i < 4; i++ {
		require.NoError(t, rt.Send(context.Background(), []byte("x")))
	}
	s := rt.Stats()
	require.Equal(t, []uint64{2, 0, 2}, routed(rt))
	require.NotZero(t, s.Rings[1].Skipped)
	require.Zero(t, s.Rings[0].Skipped)
}

// A ring whose consumer stops moving with messages waiting leaves the
// rotation (stalled) and returns when the consumer moves again.
func TestStalledLeavesAndReturns(t *testing.T) {
	rings := []*ipc.Ring{newRing(t, ipc.Config{}), newRing(t, ipc.Config{})}
	cs := attach(t, rings...)
	fill(t, rings[0], 5, 8) // messages wait before the router starts: nothing
	fill(t, rings[1], 5, 8) // it does depends on how fast the test runs
	rt := newRouter(t, rings, &route.Config{Sample: time.Millisecond, StallAfter: 20 * time.Millisecond})
	// Nobody reads: both stall.
	waitFor(t, "stalled", func() bool {
		s := rt.Stats()
		return s.Rings[0].Health == route.Stalled && s.Rings[1].Health == route.Stalled
	})
	require.ErrorIs(t, rt.TrySend([]byte("x")), ipc.ErrFull, "no ring in the rotation")
	require.NotZero(t, rt.Stats().Rings[0].Skipped)
	// Ring 0's consumer reads: it returns (empty, it cannot stall).
	n, err := cs[0].TryRead(100, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 5, n)
	waitFor(t, "ring 0 back", func() bool { return rt.Stats().Rings[0].Health == route.Healthy })
	s := rt.Stats().Rings[0] // empty, it stays in the rotation
	require.EqualValues(t, 1, s.Left)
	require.EqualValues(t, 1, s.Returned)
	require.NoError(t, rt.TrySend([]byte("x")))
	require.Equal(t, []uint64{1, 0}, routed(rt))
}

// A ring whose consumer goes leaves the rotation (dead) and returns when a
// consumer attaches again; its backlog waited in the ring for it.
func TestDeadLeavesAndReturns(t *testing.T) {
	rings := []*ipc.Ring{newRing(t, ipc.Config{}), newRing(t, ipc.Config{})}
	cs := attach(t, rings...)
	rt := newRouter(t, rings, &route.Config{Sample: time.Millisecond, StallAfter: forever})
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		require.NoError(t, rt.Send(ctx, []byte{byte(i)}))
	}
	backlog := routed(rt)[1]
	require.NotZero(t, backlog)
	_, err := cs[0].TryRead(100, func([]byte) {})
	require.NoError(t, err)
	require.NoError(t, cs[1].Close())
	waitFor(t, "ring 1 dead", func() bool { return rt.Stats().Rings[1].Health == route.Dead })
	before := routed(rt)
	for i := 0; i < 4; i++ {
		require.NoError(t, rt.Send(ctx, []byte("y")))
	}
	require.Equal(t, []uint64{before[0] + 4, backlog}, routed(rt), "nothing for the dead ring")
	require.NotZero(t, rt.Stats().Rings[1].Skipped)
	c, err := rings[1].Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	var got []byte
	n, err := c.TryRead(100, func(m []byte) { got = append(got, m...) })
	require.NoError(t, err)
	require.EqualValues(t, backlog, n, "the dead consumer's backlog waited for the new one")
	for k := 1; k < len(got); k++ {
		require.Less(t, got[k-1], got[k], "in order")
	}
	waitFor(t, "ring 1 back", func() bool { return rt.Stats().Rings[1].Health == route.Healthy })
	s := rt.Stats().Rings[1]
	require.EqualValues(t, 1, s.Left)
	require.EqualValues(t, 1, s.Returned)
}

// When no ring takes a message, Config.Full applies: drop (counted),
// overflow, or wait until ctx ends or a ring has room.
func TestAllFull(t *testing.T) {
	small := ipc.Config{Capacity: 1024, MaxMessage: 128}
	msg := make([]byte, 120) // 128-byte records: 8 per ring
	fillAll := func(rt *route.Router) {
		for i := 0; i < 16; i++ {
			require.NoError(t, rt.TrySend(msg))
		}
		require.ErrorIs(t, rt.TrySend(msg), ipc.ErrFull)
		require.Zero(t, rt.Stats().Dropped, "TrySend does not count")
	}
	t.Run("drop", func(t *testing.T) {
		rings := []*ipc.Ring{newRing(t, small), newRing(t, small)}
		attach(t, rings...)
		rt := newRouter(t, rings, &route.Config{Full: ipc.Drop, StallAfter: forever})
		fillAll(rt)
		require.ErrorIs(t, rt.Send(context.Background(), msg), ipc.ErrFull)
		require.ErrorIs(t, rt.Send(context.Background(), msg), ipc.ErrFull)
		require.EqualValues(t, 2, rt.Stats().Dropped)
	})
	t.Run("overflow", func(t *testing.T) {
		rings := []*ipc.Ring{newRing(t, small), newRing(t, small)}
		attach(t, rings...)
		var got [][]byte
		rt := newRouter(t, rings, &route.Config{StallAfter: forever, Overflow: func(m []byte) error {
			got = append(got, append([]byte(nil), m...))
			return nil
		}})
		fillAll(rt)
		require.NoError(t, rt.Send(context.Background(), []byte("spare")))
		require.Equal(t, [][]byte{[]byte("spare")}, got)
		require.EqualValues(t, 1, rt.Stats().Overflowed)
	})
	t.Run("wait", func(t *testing.T) {
		rings := []*ipc.Ring{newRing(t, small), newRing(t, small)}
		cs := attach(t, rings...)
		rt := newRouter(t, rings, &route.Config{StallAfter: forever, Sample: time.Millisecond})
		fillAll(rt)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := rt.Send(ctx, msg)
		t.Logf("%v", err)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.EqualValues(t, 1, rt.Stats().Dropped)
		// A waiting Send goes through once a consumer makes room.
		done := make(chan error, 1)
		go func() { done <- rt.Send(context.Background(), []byte("late")) }()
		n, err := cs[1].Read(context.Background(), 1, func([]byte) {})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.NoError(t, <-done)
		require.EqualValues(t, []uint64{8, 9}, routed(rt))
	})
}

func TestConfigRefused(t *testing.T) {
	r := newRing(t, ipc.Config{})
	for _, cfg := range []route.Config{
		{By: 9}, {Full: ipc.DropOldest}, {Sample: -1}, {Spill: true},
	} {
		_, err := route.New([]*ipc.Ring{r}, &cfg)
		require.ErrorIs(t, err, fs.ErrInvalid, "%+v", cfg)
	}
	_, err := route.New(nil, nil)
	require.ErrorIs(t, err, route.ErrNoRings)
	// A refused New leaves no producer behind.
	p, err := r.Producer(nil)
	require.NoError(t, err)
	require.NoError(t, p.Close())

	rt := newRouter(t, []*ipc.Ring{r}, nil)
	require.ErrorIs(t, rt.SendKey(context.Background(), []byte("k"), nil), fs.ErrInvalid)
	kr := newRouter(t, []*ipc.Ring{newRing(t, ipc.Config{})}, &route.Config{By: route.ByKey})
	require.ErrorIs(t, kr.Send(context.Background(), nil), fs.ErrInvalid)
}

// Send's fast path allocates nothing, whatever the strategy.
func TestSendAllocs(t *testing.T) {
	for _, by := range []route.Strategy{route.LeastDepth, route.RoundRobin, route.ByKey} {
		t.Run(by.String(), func(t *testing.T) {
			rings := []*ipc.Ring{newRing(t, ipc.Config{}), newRing(t, ipc.Config{}), newRing(t, ipc.Config{}), newRing(t, ipc.Config{})}
			attach(t, rings...)
			rt := newRouter(t, rings, &route.Config{By: by, StallAfter: forever})
			msg, key := make([]byte, 48), []byte("key-1")
			ctx := context.Background()
			allocs := testing.AllocsPerRun(1000, func() {
				var err error
				if by == route.ByKey {
					err = rt.SendKey(ctx, key, msg)
				} else {
					err = rt.Send(ctx, msg)
				}
				if err != nil {
					panic(err)
				}
			})
			require.Zero(t, allocs)
		})
	}
}

// Messages of one key arrive in the order sent, with spill-over off, while
// consumers read at random paces (pressure coming and going) and the
// router waits for room on full rings.
func TestKeyOrder(t *testing.T) {
	const rings, keys, perKey = 4, 64, 300
	cfg := ipc.Config{Capacity: 4096}
	rs := make([]*ipc.Ring, rings)
	for i := range rs {
		rs[i] = newRing(t, cfg)
	}
	cs := attach(t, rs...)
	rt := newRouter(t, rs, &route.Config{By: route.ByKey, Sample: time.Millisecond, StallAfter: forever})

	var mu sync.Mutex
	next := make(map[uint32]uint32)
	var bad []string
	total := 0
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for {
				_, err := c.Read(ctx, 1+rng.IntN(8), func(m []byte) {
					k, s := binary.LittleEndian.Uint32(m), binary.LittleEndian.Uint32(m[4:])
					mu.Lock()
					defer mu.Unlock()
					total++
					if s != next[k] {
						bad = append(bad, fmt.Sprintf("key %d: got %d, want %d", k, s, next[k]))
					}
					next[k] = s + 1
				})
				if err != nil {
					return
				}
				if rng.IntN(16) == 0 {
					time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond) // pressure
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sent := make([]uint32, keys)
	key, msg := make([]byte, 4), make([]byte, 64)
	for n := 0; n < keys*perKey; n++ {
		k := uint32(rng.IntN(keys))
		for sent[k] == perKey {
			k = (k + 1) % keys
		}
		binary.LittleEndian.PutUint32(key, k)
		binary.LittleEndian.PutUint32(msg, k)
		binary.LittleEndian.PutUint32(msg[4:], sent[k])
		sent[k]++
		require.NoError(t, rt.SendKey(context.Background(), key, msg[:8+rng.IntN(56)]))
	}
	waitFor(t, "every message read", func() bool { mu.Lock(); defer mu.Unlock(); return total == keys*perKey })
	cancel()
	wg.Wait()
	require.Empty(t, bad)
	for _, s := range rt.Stats().Rings {
		require.Zero(t, s.Spilled)
	}
}

// With Spill, a message whose ring is pressured goes to the next healthy
// ring, counted on the keyed ring.
func TestKeySpill(t *testing.T) {
	cfg := ipc.Config{Capacity: 64 << 10, HighWater: 1024, LowWater: 512}
	rings := []*ipc.Ring{newRing(t, cfg), newRing(t, cfg), newRing(t, cfg)}
	attach(t, rings...)
	rt0 := newRouter(t, rings, &route.Config{By: route.ByKey, StallAfter: forever})
	// Find a key of ring 0 with the router itself (the same hash).
	var key []byte
	for i := 0; key == nil; i++ {
		k := []byte(fmt.Sprint("k", i))
		before := routed(rt0)
		require.NoError(t, rt0.TrySendKey(k, nil))
		if routed(rt0)[0] > before[0] {
			key = k
		}
	}
	require.NoError(t, rt0.Close())
	fill(t, rings[0], 20, 56) // ring 0 pressured
	rt := newRouter(t, rings, &route.Config{By: route.ByKey, Spill: true, StallAfter: forever})
	require.True(t, rt.Stats().Rings[0].Pressured)
	for i := 0; i < 3; i++ {
		require.NoError(t, rt.SendKey(context.Background(), key, []byte("m")))
	}
	s := rt.Stats()
	require.EqualValues(t, 3, s.Rings[0].Spilled)
	require.Equal(t, []uint64{0, 3, 0}, routed(rt), "spilled to the next ring")
}
