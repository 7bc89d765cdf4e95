package ring_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/ring"
)

// TestPressureFallsWhenBatchDrains: a consumer whose read batch takes
// exactly what the ring holds (the batch fills its maximum at the last
// record it knew of) lowers the depth pressure level at the end of that
// batch, without another read: a consumer that then exits or idles does
// not leave pressure raised on an empty ring. A batch that leaves the
// depth above the low level keeps it raised.
func TestPressureFallsWhenBatchDrains(t *testing.T) {
	for _, cfg := range []ring.Config{
		{Kind: ring.SPSC, Capacity: 1 << 12, MaxMessage: 120},
		{Kind: ring.MPSC, Capacity: 1 << 12, MaxMessage: 120},
		{Kind: ring.SPSC, Capacity: 1 << 12, MaxMessage: 120, HeaderCommit: true},
	} {
		r, p, c := pressureRing(t, cfg)
		name := cfg.Kind.String()
		if cfg.HeaderCommit {
			name += " header commit"
		}
		msg := make([]byte, 120) // 128-byte records
		for i := 0; i < 20; i++ {
			require.NoError(t, p.TryWrite(msg))
		}
		require.Equal(t, uint32(ring.PressureDepth), p.Pressure(), "%s: raised at the high level", name)
		n, err := c.ReadBatch(2, func([]byte) {}) // depth 18*128 = 2304: above the low level
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Equal(t, uint32(ring.PressureDepth), p.Pressure(), "%s: holds above the low level", name)
		n, err = c.ReadBatch(18, func([]byte) {})
		require.NoError(t, err)
		require.Equal(t, 18, n)
		require.Zero(t, r.Stats().Depth)
		require.Zero(t, p.Pressure(), "%s: falls at the end of the batch that drained the ring", name)
		require.Equal(t, uint64(2), r.Stats().PressureChanges)
	}
}
