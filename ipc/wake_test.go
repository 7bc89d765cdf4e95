package ipc_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
)

// TestWakeOnReleaseWithoutDelivery: a read call that releases room without
// delivering a message (only duplicates, only an aborted claim's padding)
// wakes a parked producer, as a read that delivers does; a read that
// releases nothing does not. The parked producer is stood in for by its
// parked word (a producer of another process that announced its sleep), so
// that nothing depends on when a real one goes to sleep.
func TestWakeOnReleaseWithoutDelivery(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		cfg   ipc.Config
		stage func(t *testing.T, p *ipc.Producer) // leaves records that deliver nothing
	}{
		{"duplicates", ipc.Config{Sequences: true}, func(t *testing.T, p *ipc.Producer) {
			for range 3 {
				require.NoError(t, p.WriteSeq(ctx, 1, []byte("again")))
			}
		}},
		{"padding", ipc.Config{Kind: ipc.MPSC, Producers: 2}, func(t *testing.T, p *ipc.Producer) {
			_, err := p.Claim(ctx, 64)
			require.NoError(t, err)
			require.NoError(t, p.Abort())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Capacity = 1 << 12
			r, err := ipc.Create(testutil.Name(t), cfg)
			require.NoError(t, err)
			defer r.Close()
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			defer c.Close()
			p, err := r.Producer(nil)
			require.NoError(t, err)
			defer p.Close()
			st, err := r.Stats()
			require.NoError(t, err)
			if st.Sequences {
				require.NoError(t, p.WriteSeq(ctx, 1, []byte("first")))
				n, err := c.TryRead(1, func([]byte) {})
				require.NoError(t, err)
				require.Equal(t, 1, n)
			}
			wakeups := func() uint64 {
				st, err := r.Stats()
				require.NoError(t, err)
				return st.ProducerWakeups
			}
			pw := c.ProducerWaitLine()

			// Nothing to read: nothing released, a parked producer sleeps on.
			pw.Parked.Store(1)
			n, err := c.TryRead(10, func([]byte) {})
			require.NoError(t, err)
			require.Zero(t, n)
			require.Zero(t, wakeups(), "an empty read wakes nobody")
			require.Equal(t, uint32(1), pw.Parked.Load())

			tc.stage(t, p)
			before, err := r.Stats()
			require.NoError(t, err)
			require.NotZero(t, before.Depth)
			n, err = c.TryRead(10, func([]byte) { t.Error("delivered a message") })
			require.NoError(t, err)
			require.Zero(t, n, "nothing delivered")
			after, err := r.Stats()
			require.NoError(t, err)
			require.Zero(t, after.Depth, "the room was released")
			require.Equal(t, uint64(1), after.ProducerWakeups, "the parked producer was woken")
			require.Zero(t, pw.Parked.Load())
		})
	}
}
