package bench_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shmring/shmring/bench"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	// The cross-process cases re-execute this binary as their children.
	if len(os.Args) > 2 && os.Args[1] == bench.ChildArg {
		if err := bench.RunChild(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testutil.Main(m)
}

// TestCasesRun checks that every case of the harness moves its messages
// and reports a rate and the CPU it took (the size sweep's too); how fast
// is the harness's business, never a test's.
func TestCasesRun(t *testing.T) {
	for _, c := range append(bench.Cases(), bench.SweepCases()...) {
		r, err := c.RunCPU(os.Args[0], 20_000, 64)
		if errors.Is(err, bench.ErrSkipped) {
			t.Logf("%s: %v", c.Name, err)
			continue
		}
		require.NoError(t, err, c.Name)
		require.Greater(t, r.Rate, 0.0, c.Name)
		require.Positive(t, r.CPUPerMsg, "%s: no CPU per message", c.Name)
	}
	for _, c := range bench.LatencyCases() {
		l, err := c.Run(os.Args[0], 300)
		if errors.Is(err, bench.ErrSkipped) {
			continue
		}
		require.NoError(t, err, c.Name)
		require.Equal(t, 300, l.N, c.Name)
		require.Positive(t, l.P50, c.Name)
		require.GreaterOrEqual(t, l.Max, l.P999, c.Name)
	}
	f, err := bench.IdleCPU(os.Args[0], "park", 100*time.Millisecond)
	require.NoError(t, err)
	require.GreaterOrEqual(t, f, 0.0)
	require.Error(t, bench.RunChild("no-such-role", []string{"x", "1", "64"}))
}

// TestOneCoreLoop: the one-core loop moves whole batches, including a last
// one past n, and checks what it reads; it refuses messages too short for
// their sequence number.
func TestOneCoreLoop(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: bench.OneCoreCapacity})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	p, err := r.Producer(nil)
	require.NoError(t, err)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, bench.OneCoreLoop(ctx, p, c, 5000, 1, 64))
	require.NoError(t, bench.OneCoreLoop(ctx, p, c, 5000, 64, 64)) // 79 batches
	require.NoError(t, bench.OneCoreLoop(ctx, p, c, 100, 64, 200))
	require.Error(t, bench.OneCoreLoop(ctx, p, c, 10, 1, 4))
	require.NoError(t, bench.OneCoreIterLoop(ctx, p, c, 5000, 64, 64))
	require.NoError(t, bench.OneCoreIterLoop(ctx, p, c, 100, 64, 200))
	require.Error(t, bench.OneCoreIterLoop(ctx, p, c, 10, 1, 64))
	n, err := c.TryRead(1, func([]byte) {})
	require.NoError(t, err)
	require.Zero(t, n, "the loop leaves the ring empty")
}
