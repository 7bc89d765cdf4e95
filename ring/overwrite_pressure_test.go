package ring_test

import (
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestDropOldestPressureFalls: in drop-oldest rings (SPSC and MPSC) the
// consumer lowers the depth pressure level as it reads, as in every other
// ring: reading down to the low level lowers it, without a new consumer or
// a poll of an empty ring; reading that stays above it does not.
func TestDropOldestPressureFalls(t *testing.T) {
	for _, kind := range []ring.Kind{ring.SPSC, ring.MPSC} {
		cfg := ring.Config{Kind: kind, Capacity: 1 << 12, MaxMessage: 120, Overwrite: true}
		if kind == ring.MPSC {
			cfg.Slots = 2
		}
		r, p, c := pressureRing(t, cfg)
		msg := make([]byte, 120)  // 128-byte records
		for i := 0; i < 40; i++ { // over a capacity: the oldest are reclaimed
			_, err := p.TryWriteOverwrite(msg)
			require.NoError(t, err)
		}
		require.Equal(t, uint32(ring.PressureDepth), p.Pressure(), "%v: raised at the high level", kind)
		n, err := c.ReadBatch(8, func([]byte) {}) // depth 4096 - 8*128 = 3072: above the low level
		require.NoError(t, err)
		require.Equal(t, 8, n)
		require.Equal(t, uint32(ring.PressureDepth), p.Pressure(), "%v: holds above the low level", kind)
		for i := 0; i < 16; i++ { // one at a time down to 1024 bytes
			ok, err := c.TryRead(func([]byte) {})
			require.NoError(t, err)
			require.True(t, ok)
		}
		require.Equal(t, uint64(1024), r.Stats().Depth)
		require.Zero(t, p.Pressure(), "%v: falls at the low level while the consumer reads", kind)
		require.Equal(t, uint64(2), r.Stats().PressureChanges)
	}
}
