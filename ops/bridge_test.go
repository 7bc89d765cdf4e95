package ops_test

import (
	"testing"
	"time"

	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestBridges: ops.Bridges lists the blocks a bridge has written, read
// from a read-only opening (another process's view), with fresh, stale,
// stopped, future and unknown values each shown for what they are.
func TestBridges(t *testing.T) {
	r := create(t, ipc.Config{Capacity: 1 << 12})
	ro := open(t, r.Path(), ipc.WithReadOnly())
	bs, err := ops.Bridges(ro)
	require.NoError(t, err)
	require.Empty(t, bs, "no bridge ever ran")

	store := func(dir ring.BridgeDir, b ring.BridgeBlock) {
		h := handle.Of(r)
		require.NoError(t, h.Enter())
		defer h.Leave()
		h.R.StoreBridge(dir, &b)
	}
	now := time.Now()
	store(ring.BridgeIn, ring.BridgeBlock{Heartbeat: uint64(now.UnixNano()), PID: 42, PIDNamespace: 7,
		Started: uint64(now.Add(-time.Minute).UnixNano()), State: ring.BridgeFetching, Connection: ring.BridgeConnConnected,
		Window: 256, Moved: 10, Acked: 9, Errors: 1, Reconnects: 2, Duplicates: 3, Mark: 99})
	bs, err = ops.Bridges(ro)
	require.NoError(t, err)
	require.Len(t, bs, 1)
	b := bs[0]
	require.Equal(t, "in", b.Direction)
	require.True(t, b.Up)
	require.False(t, b.Stale)
	require.Equal(t, "fetching", b.State)
	require.Equal(t, "connected", b.Connection)
	require.Equal(t, uint64(42), b.PID)
	require.Equal(t, uint64(7), b.PIDNamespace)
	require.Equal(t, now.UnixNano(), b.Heartbeat.UnixNano())
	require.Equal(t, now.Add(-time.Minute).UnixNano(), b.Started.UnixNano())
	require.Equal(t, [7]uint64{256, 0, 10, 9, 1, 2, 3}, [7]uint64{b.Window, b.InFlight, b.Moved, b.Acked, b.Errors, b.Reconnects, b.Duplicates})
	require.Equal(t, uint64(99), b.Mark)

	for _, tc := range []struct {
		name        string
		beat        time.Time
		state, conn uint64
		wantState   string
		wantConn    string
		stale, up   bool
	}{
		{"stale", now.Add(-ops.BridgeStaleAfter - time.Second), ring.BridgeReading, ring.BridgeConnReconnecting, "reading", "reconnecting", true, false},
		{"stopped", now, ring.BridgeStopped, ring.BridgeConnClosed, "stopped", "closed", false, false},
		{"stopped long ago", now.Add(-time.Hour), ring.BridgeStopped, ring.BridgeConnClosed, "stopped", "closed", false, false},
		{"future", now.Add(time.Hour), ring.BridgeFull, ring.BridgeConnConnected, "full", "connected", true, false},
		{"unknown codes", now, 1 << 60, 77, "unknown(1152921504606846976)", "unknown(77)", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store(ring.BridgeOut, ring.BridgeBlock{Heartbeat: uint64(tc.beat.UnixNano()), State: tc.state, Connection: tc.conn})
			bs, err := ops.Bridges(ro)
			require.NoError(t, err)
			require.Len(t, bs, 2)
			b := bs[0]
			require.Equal(t, "out", b.Direction)
			require.Equal(t, tc.wantState, b.State)
			require.Equal(t, tc.wantConn, b.Connection)
			require.Equal(t, tc.stale, b.Stale)
			require.Equal(t, tc.up, b.Up)
		})
	}

	// A heartbeat past what an int64 holds is clamped, not wrapped.
	store(ring.BridgeOut, ring.BridgeBlock{Heartbeat: 1<<64 - 1})
	bs, err = ops.Bridges(ro)
	require.NoError(t, err)
	require.True(t, bs[0].Stale)
	require.True(t, bs[0].Heartbeat.After(now))

	require.NoError(t, ro.Close())
	_, err = ops.Bridges(ro)
	require.ErrorIs(t, err, ipc.ErrClosed)
}
