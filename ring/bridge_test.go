package ring_test

import (
	"encoding/binary"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestBridgeBlocks: a new ring's two bridge blocks are zero; each stores
// and loads at its own line (13, 14) of the control block, every word
// little-endian at the offset docs/layout.md gives, touching nothing else
// of the ring; the ring still works.
func TestBridgeBlocks(t *testing.T) {
	p, c, region := newRing(t, 1<<12, 256)
	r, err := ring.Attach(region)
	require.NoError(t, err)
	require.Equal(t, ring.BridgeBlock{}, r.LoadBridge(ring.BridgeOut))
	require.Equal(t, ring.BridgeBlock{}, r.LoadBridge(ring.BridgeIn))
	before := append([]byte(nil), region...)

	out := ring.BridgeBlock{Heartbeat: 1, PID: 2, PIDNamespace: 3, Started: 4, State: 5, Connection: 6, Window: 7,
		InFlight: 8, Moved: 9, Acked: 10, Errors: 11, Reconnects: 12, Duplicates: 13, Mark: 14}
	in := out
	for _, v := range []*uint64{&in.Heartbeat, &in.PID, &in.PIDNamespace, &in.Started, &in.State, &in.Connection, &in.Window,
		&in.InFlight, &in.Moved, &in.Acked, &in.Errors, &in.Reconnects, &in.Duplicates, &in.Mark} {
		*v += 100
	}
	r.StoreBridge(ring.BridgeOut, &out)
	r.StoreBridge(ring.BridgeIn, &in)
	require.Equal(t, out, r.LoadBridge(ring.BridgeOut))
	require.Equal(t, in, r.LoadBridge(ring.BridgeIn))

	// The words, as a reader in another language finds them: u64 k of
	// line 13 (region 1664) holds the k-th field of the layout's table.
	for k := uint64(0); k < 14; k++ {
		require.Equal(t, k+1, binary.LittleEndian.Uint64(region[1664+8*k:]), "line 13 word %d", k)
		require.Equal(t, k+101, binary.LittleEndian.Uint64(region[1792+8*k:]), "line 14 word %d", k)
	}
	for i := range region {
		if i >= 1664 && i < 1664+112 || i >= 1792 && i < 1792+112 {
			continue
		}
		require.Equal(t, before[i], region[i], "region byte %d changed", i)
	}
	require.NoError(t, p.TryWrite([]byte("still a ring")))
	m, ok := readOne(t, c)
	require.True(t, ok)
	require.Equal(t, "still a ring", string(m))
}
