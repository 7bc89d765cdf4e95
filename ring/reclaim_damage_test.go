package ring_test

import (
	"encoding/binary"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestReclaimDamagedHeaders: a drop-oldest producer's reclaim walk (SPSC
// and MPSC) checks each header it walks as the consumer does (one decoder):
// a damaged one is ErrCorrupt, for the producer, the consumer and Peek
// alike; never a panic, an index out of range, a hang or a record dropped
// on the strength of a header the consumer would refuse. In an MPSC ring a
// zero or pending header is a record being written, not damage: the
// producer gives up (ErrFull) and nothing is corrupt.
func TestReclaimDamagedHeaders(t *testing.T) {
	const maxMsg = 120
	hdr := func(length uint64, slot, typ uint64) uint64 { return length | slot<<32 | typ<<48 }
	cases := []struct {
		name    string
		h       uint64
		corrupt [2]bool // spsc, mpsc
	}{
		{"zero", 0, [2]bool{true, false}},
		{"type 0 not zero", hdr(120, 0, 0), [2]bool{true, true}},
		{"pending", hdr(120, 0, 3), [2]bool{true, false}},
		{"unknown type", hdr(120, 0, 9), [2]bool{true, true}},
		{"reserved bits", hdr(120, 0, 1) | 1<<56, [2]bool{true, true}},
		{"data above max message", hdr(maxMsg+80, 0, 1), [2]bool{true, true}},
		{"data of 2^32-1 bytes", hdr(1<<32-1, 0, 1), [2]bool{true, true}},
		{"padding past the data area", hdr(1<<12, 0, 2), [2]bool{true, true}},
	}
	for k, kind := range []ring.Kind{ring.SPSC, ring.MPSC} {
		for _, tc := range cases {
			cfg := ring.Config{Kind: kind, Capacity: 1 << 12, MaxMessage: maxMsg, Overwrite: true}
			if kind == ring.MPSC {
				cfg.Slots = 1
			}
			region, r := formatRing(t, cfg)
			p, err := newProducer(r)
			require.NoError(t, err)
			msg := make([]byte, maxMsg) // 128-byte records
			for i := 0; i < 40; i++ {   // full, and a few reclaimed
				_, err := p.TryWriteOverwrite(msg)
				require.NoError(t, err)
			}
			st := r.Stats()
			require.Equal(t, st.Capacity, st.Depth)
			// Damage the oldest record's header.
			binary.LittleEndian.PutUint64(region[r.DataOffset()+st.ConsumerPos%st.Capacity:], tc.h)
			_, err = p.TryWriteOverwrite(msg)
			if tc.corrupt[k] {
				require.ErrorIs(t, err, ring.ErrCorrupt, "%v %s: the producer", kind, tc.name)
				require.ErrorIs(t, p.TryWrite(msg), ring.ErrCorrupt, "%v %s: and it stays stopped", kind, tc.name)
				c, err := r.NewConsumer()
				require.NoError(t, err)
				_, err = c.ReadBatch(100, func([]byte) {})
				require.ErrorIs(t, err, ring.ErrCorrupt, "%v %s: the consumer agrees", kind, tc.name)
				_, err = r.Peek(100)
				require.ErrorIs(t, err, ring.ErrCorrupt, "%v %s: and Peek", kind, tc.name)
			} else {
				require.ErrorIs(t, err, ring.ErrFull, "%v %s: a record being written is waited for", kind, tc.name)
				require.Equal(t, st.ConsumerPos, r.Stats().ConsumerPos, "%v %s: nothing reclaimed past it", kind, tc.name)
			}
		}
	}
}
