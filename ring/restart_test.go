package ring_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/ring"
)

// TestSharedOverwriteConsumerRestartQuiet: a drop-oldest MPSC consumer
// stopped in its real release (ring.ReleaseDying: lock held, zeroing mark
// past the first record, nothing zeroed), then part of the zeroing done by
// hand so that the header at the consumer position reads zero. A new
// consumer, attached as a restarted process would attach, with producers
// that never fill the ring (so none of them ever reclaims), must finish the
// dead release at start-up and deliver everything that follows: it must
// not stop at the zeroed header waiting for a lock nobody takes.
func TestSharedOverwriteConsumerRestartQuiet(t *testing.T) {
	for _, order := range []string{"write then start", "start then write"} {
		t.Run(order, func(t *testing.T) {
			const capacity = 1 << 12
			region, r := newSharedOverwrite(t, capacity, 256, 2)
			p0 := slotProducer(t, r, 0)
			msg := make([]byte, 100) // 112-byte records
			for seq := uint64(1); seq <= 3; seq++ {
				binary.LittleEndian.PutUint64(msg, seq)
				require.NoError(t, p0.TryWrite(msg))
			}
			old, err := r.NewConsumer()
			require.NoError(t, err)
			ring.ReleaseDying(t, old)
			require.Equal(t, uint64(1<<32), binary.LittleEndian.Uint64(region[ring.OffReleaseLock:]), "the consumer holds the lock")
			require.Equal(t, uint64(112), binary.LittleEndian.Uint64(region[ring.OffZeroEnd:]), "its zeroing mark is past the first record")
			data := region[len(region)-capacity:]
			clear(data[:56]) // part of the zeroing: the header is zero now

			// The restarted process: a new attachment; the consumer role is
			// held (by the new consumer), so producers see its ID as alive.
			r2 := attach(t, region)
			setAlive(t, r2, func(int) bool { return true })
			p1 := slotProducer(t, r2, 1)
			write := func() {
				for seq := uint64(4); seq <= 6; seq++ {
					binary.LittleEndian.PutUint64(msg, seq)
					dropped, err := p1.TryWriteOverwrite(msg)
					require.NoError(t, err)
					require.Zero(t, dropped, "the ring is not full: nothing reclaimed")
				}
			}
			if order == "write then start" {
				write()
			}
			c, err := r2.NewConsumer()
			require.NoError(t, err)
			if order == "start then write" {
				write()
			}
			require.Equal(t, []uint64{2, 3, 4, 5, 6}, drainSeqs(t, c), "the record being released is gone; everything after it arrives")
			require.Zero(t, binary.LittleEndian.Uint64(region[ring.OffReleaseLock:]), "the lock is free")
			st := r2.Stats()
			require.Zero(t, st.Depth)
			require.Zero(t, st.Drops)
			require.Zero(t, st.Lapped)
		})
	}
}
