package metrics_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// storeBridge writes a bridge block into r as a bridge would.
func storeBridge(t *testing.T, r *ipc.Ring, dir ring.BridgeDir, b ring.BridgeBlock) {
	t.Helper()
	h := handle.Of(r)
	require.NoError(t, h.Enter())
	defer h.Leave()
	h.R.StoreBridge(dir, &b)
}

// TestBridgeMetrics: a ring's bridge blocks come out ring- and
// direction-labelled, from both collectors (the rings given, and every
// ring of a directory); a ring no bridge ran on has none; a stopped or
// stale bridge is down.
func TestBridgeMetrics(t *testing.T) {
	dir := t.TempDir() // the directory collector's: only this test's rings
	r := newRing(t, ipc.Config{Capacity: 1 << 12}, ipc.WithDir(dir))
	quiet := newRing(t, ipc.Config{Capacity: 1 << 12}, ipc.WithDir(dir))
	now := uint64(time.Now().UnixNano())
	storeBridge(t, r, ring.BridgeOut, ring.BridgeBlock{Heartbeat: now, State: ring.BridgeFull, Connection: ring.BridgeConnConnected,
		Window: 1024, InFlight: 1024, Moved: 5000, Acked: 3976, Errors: 2, Reconnects: 1, Duplicates: 7, Mark: 3970})
	storeBridge(t, r, ring.BridgeIn, ring.BridgeBlock{Heartbeat: now, State: ring.BridgeStopped, Connection: ring.BridgeConnClosed,
		Window: 256, Moved: 300, Acked: 300, Mark: 812})

	want := func(label string) string {
		return strings.NewReplacer("RING", label).Replace(`
# HELP shmring_bridge_up 1 while the bridge's heartbeat (every 100 ms) is fresh and it has not stopped; 0 if it stopped, died or hangs.
# TYPE shmring_bridge_up gauge
shmring_bridge_up{direction="in",ring="RING"} 0
shmring_bridge_up{direction="out",ring="RING"} 1
# HELP shmring_bridge_connected 1 while the bridge's NATS connection is connected.
# TYPE shmring_bridge_connected gauge
shmring_bridge_connected{direction="in",ring="RING"} 0
shmring_bridge_connected{direction="out",ring="RING"} 1
# HELP shmring_bridge_window_messages out: the most publishes awaiting the stream's acknowledgement; in: the fetch batch.
# TYPE shmring_bridge_window_messages gauge
shmring_bridge_window_messages{direction="in",ring="RING"} 256
shmring_bridge_window_messages{direction="out",ring="RING"} 1024
# HELP shmring_bridge_in_flight_messages out: publishes awaiting the stream's acknowledgement; in: 1 while fetching is paused for the ring's pressure.
# TYPE shmring_bridge_in_flight_messages gauge
shmring_bridge_in_flight_messages{direction="in",ring="RING"} 0
shmring_bridge_in_flight_messages{direction="out",ring="RING"} 1024
# HELP shmring_bridge_published_messages_total out: publishes sent to the stream, re-publishes included.
# TYPE shmring_bridge_published_messages_total counter
shmring_bridge_published_messages_total{direction="out",ring="RING"} 5000
# HELP shmring_bridge_written_messages_total in: messages written into the ring.
# TYPE shmring_bridge_written_messages_total counter
shmring_bridge_written_messages_total{direction="in",ring="RING"} 300
# HELP shmring_bridge_acked_messages_total out: publishes the stream acknowledged; in: messages acknowledged to the stream, each once the ring held it.
# TYPE shmring_bridge_acked_messages_total counter
shmring_bridge_acked_messages_total{direction="in",ring="RING"} 300
shmring_bridge_acked_messages_total{direction="out",ring="RING"} 3976
# HELP shmring_bridge_released_messages_total out: messages released from the ring, acknowledged in order.
# TYPE shmring_bridge_released_messages_total counter
shmring_bridge_released_messages_total{direction="out",ring="RING"} 3970
# HELP shmring_bridge_last_sequence in: the stream sequence up to which every message of the consumer is in the ring.
# TYPE shmring_bridge_last_sequence gauge
shmring_bridge_last_sequence{direction="in",ring="RING"} 812
# HELP shmring_bridge_errors_total NATS-side failures, each retried.
# TYPE shmring_bridge_errors_total counter
shmring_bridge_errors_total{direction="in",ring="RING"} 0
shmring_bridge_errors_total{direction="out",ring="RING"} 2
# HELP shmring_bridge_reconnects_total Reconnections of the bridge's NATS connection.
# TYPE shmring_bridge_reconnects_total counter
shmring_bridge_reconnects_total{direction="in",ring="RING"} 0
shmring_bridge_reconnects_total{direction="out",ring="RING"} 1
# HELP shmring_bridge_duplicate_messages_total out: acknowledgements the stream marked duplicate; in: deliveries the ring held already.
# TYPE shmring_bridge_duplicate_messages_total counter
shmring_bridge_duplicate_messages_total{direction="in",ring="RING"} 0
shmring_bridge_duplicate_messages_total{direction="out",ring="RING"} 7
# HELP shmring_bridge_info Always 1; the labels say what the bridge is doing (state: idle, reading, full, retrying, stopped, resyncing, fetching, paused) and its NATS connection's status.
# TYPE shmring_bridge_info gauge
shmring_bridge_info{connection="closed",direction="in",ring="RING",state="stopped"} 1
shmring_bridge_info{connection="connected",direction="out",ring="RING",state="full"} 1
`)
	}
	names := []string{"shmring_bridge_up", "shmring_bridge_connected", "shmring_bridge_window_messages", "shmring_bridge_in_flight_messages",
		"shmring_bridge_published_messages_total", "shmring_bridge_written_messages_total", "shmring_bridge_acked_messages_total",
		"shmring_bridge_released_messages_total", "shmring_bridge_last_sequence", "shmring_bridge_errors_total",
		"shmring_bridge_reconnects_total", "shmring_bridge_duplicate_messages_total", "shmring_bridge_info"}

	col := metrics.NewCollector(map[string]*ipc.Ring{"orders": r, "quiet": quiet})
	require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(want("orders")), names...))
	problems, err := testutil.CollectAndLint(col)
	require.NoError(t, err)
	require.Empty(t, problems)
	// Of the 13 names, each block has 11 (not the other direction's two),
	// and quiet none.
	require.Equal(t, 22, testutil.CollectAndCount(col, names...))

	dc := metrics.NewDirCollector(dir)
	require.NoError(t, testutil.CollectAndCompare(dc, strings.NewReader(want(filepath.Base(r.Path()))), names...))
	require.Equal(t, 22, testutil.CollectAndCount(dc, names...))

	// A heartbeat gone stale: down, whatever its state says.
	storeBridge(t, r, ring.BridgeOut, ring.BridgeBlock{Heartbeat: now - uint64(time.Minute), State: ring.BridgeReading})
	require.NoError(t, testutil.CollectAndCompare(metrics.NewCollector(map[string]*ipc.Ring{"orders": r}), strings.NewReader(`
# HELP shmring_bridge_up 1 while the bridge's heartbeat (every 100 ms) is fresh and it has not stopped; 0 if it stopped, died or hangs.
# TYPE shmring_bridge_up gauge
shmring_bridge_up{direction="in",ring="orders"} 0
shmring_bridge_up{direction="out",ring="orders"} 0
`), "shmring_bridge_up"))
}
