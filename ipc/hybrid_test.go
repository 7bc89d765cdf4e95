package ipc

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/testutil"
)

// Hybrid's phases as derived from a Wait: defaults for zero counts, the
// caller's otherwise, and no spin phase at all on a single CPU.
func TestHybridPhases(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		spins, yields        int
		oneCPU               bool
		wantSpins, wantYield int
	}{
		{"defaults", 0, 0, false, defaultHybridSpins, defaultHybridYield},
		{"given", 10, 3, false, 10, 3},
		{"defaults, one CPU", 0, 0, true, 0, defaultHybridYield},
		{"given, one CPU", 10, 3, true, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, y := hybridPhases(tc.spins, tc.yields, tc.oneCPU)
			require.Equal(t, tc.wantSpins, s, "spins")
			require.Equal(t, tc.wantYield, y, "yields")
		})
	}
}

// setMaxProcs sets GOMAXPROCS for the test and restores it after.
func setMaxProcs(t *testing.T, n int) {
	old := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

// A Producer and a Consumer read GOMAXPROCS when they are made: with 1,
// their Hybrid waits have no spin phase, whatever Wait.Spins says; with
// more (on a machine with more than one CPU), the phases are the Wait's.
func TestHybridSkipsSpinningOnOneCPU(t *testing.T) {
	r, err := Create(testutil.Name(t), Config{Capacity: 4096})
	require.NoError(t, err)
	defer r.Close()
	open := func(w Wait) (*Producer, *Consumer) {
		p, err := r.Producer(&ProducerConfig{Wait: w})
		require.NoError(t, err)
		c, err := r.Consumer(&ConsumerConfig{Wait: w})
		require.NoError(t, err)
		return p, c
	}
	closeBoth := func(p *Producer, c *Consumer) {
		require.NoError(t, p.Close())
		require.NoError(t, c.Close())
	}

	t.Run("GOMAXPROCS 1", func(t *testing.T) {
		setMaxProcs(t, 1)
		for _, w := range []Wait{{}, {Spins: 500, Yields: 7}} {
			p, c := open(w)
			wantYield := defaultHybridYield
			if w.Yields != 0 {
				wantYield = w.Yields
			}
			require.Zero(t, p.side.hybridSpins, "producer spins with %+v", w)
			require.Zero(t, c.side.hybridSpins, "consumer spins with %+v", w)
			require.Equal(t, wantYield, p.side.hybridYield)
			require.Equal(t, wantYield, c.side.hybridYield)
			closeBoth(p, c)
		}
	})
	t.Run("GOMAXPROCS 2", func(t *testing.T) {
		if runtime.NumCPU() == 1 {
			t.Skip("one CPU: Hybrid never spins here")
		}
		setMaxProcs(t, 2)
		p, c := open(Wait{Spins: 500, Yields: 7})
		require.Equal(t, 500, p.side.hybridSpins)
		require.Equal(t, 500, c.side.hybridSpins)
		require.Equal(t, 7, p.side.hybridYield)
		closeBoth(p, c)
		p, c = open(Wait{})
		require.Equal(t, defaultHybridSpins, p.side.hybridSpins)
		require.Equal(t, defaultHybridSpins, c.side.hybridSpins)
		closeBoth(p, c)
	})
	t.Run("read once", func(t *testing.T) {
		if runtime.NumCPU() == 1 {
			t.Skip("one CPU: Hybrid never spins here")
		}
		setMaxProcs(t, 2)
		p, c := open(Wait{})
		runtime.GOMAXPROCS(1) // after the endpoints were made: they keep their phases
		require.Equal(t, defaultHybridSpins, p.side.hybridSpins)
		require.Equal(t, defaultHybridSpins, c.side.hybridSpins)
		closeBoth(p, c)
	})
}

// The wait loop follows the derived phases: with no spin phase, a Hybrid
// wait's first steps are sched_yield calls, never a busy-wait iteration;
// with one, the busy-wait comes first.
func TestHybridWaitFollowsPhases(t *testing.T) {
	run := func(spins, yields, steps int) (uint64, uint64) {
		var mode atomic.Uint32
		s := waitSide{mode: &mode, hybridSpins: spins, hybridYield: yields, peerTimeout: time.Hour,
			peerAlive: func() bool { return true }, depth: func() uint64 { return 0 }}
		n := 0
		sp, y, err := s.wait(context.Background(), pHybrid, time.Time{}, func() (bool, error) {
			n++
			return n == steps, nil
		})
		require.NoError(t, err)
		return sp, y
	}
	sp, y := run(0, 50, 10)
	require.Zero(t, sp, "no spin phase: no busy-wait iteration")
	require.Equal(t, uint64(10), y, "each step a sched_yield")

	sp, y = run(5, 50, 10)
	require.Equal(t, uint64(5), sp, "the spin phase first")
	require.Equal(t, uint64(5), y, "then yields")
}
