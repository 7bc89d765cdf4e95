package metrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
	"github.com/stretchr/testify/require"
)

// TestCollectorPressureInfoSlots (issue 13, item 10): pressure is one 0/1
// gauge per cause, the high watermark's HELP mentions reset, a ring_info
// series describes the ring, and an MPSC ring has per-slot series.
func TestCollectorPressureInfoSlots(t *testing.T) {
	r := newRing(t, ipc.Config{Kind: ipc.MPSC, Producers: 4, Capacity: 1 << 10, MaxMessage: 120, HighWater: 512, LowWater: 256})
	// ProducerConfig.ID k takes slot k-1: slots 0 and 2.
	p0, err := r.Producer(&ipc.ProducerConfig{ID: 1, Full: ipc.Drop})
	require.NoError(t, err)
	defer p0.Close()
	p2, err := r.Producer(&ipc.ProducerConfig{ID: 3, Full: ipc.Drop})
	require.NoError(t, err)
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		_ = p0.Write(ctx, make([]byte, 120))
	}
	require.NoError(t, p2.Write(ctx, []byte("x")))
	require.ErrorIs(t, p2.Write(ctx, make([]byte, 120)), ipc.ErrFull)
	require.NoError(t, p2.Close())

	// The collector reads through its own handle, as serve does.
	view, err := ipc.Open(r.Path(), ipc.WithReadOnly())
	require.NoError(t, err)
	defer view.Close()
	col := metrics.NewCollector(map[string]*ipc.Ring{"events": view})
	require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(`
# HELP shmring_pressure 1 while the ring's pressure is raised for the cause: depth (past the high level) or delay (queueing delay above the target); else 0.
# TYPE shmring_pressure gauge
shmring_pressure{cause="delay",ring="events"} 0
shmring_pressure{cause="depth",ring="events"} 1
# HELP shmring_high_watermark_bytes Largest depth observed since creation or the last reset (ringctl reset, ops.ResetHighWater).
# TYPE shmring_high_watermark_bytes gauge
shmring_high_watermark_bytes{ring="events"} 912
# HELP shmring_ring_info Always 1; the labels describe the ring: kind, producer slots (mpsc), largest message, and its creation options.
# TYPE shmring_ring_info gauge
shmring_ring_info{drop_oldest="false",header_commit="false",kind="mpsc",max_message_bytes="120",ring="events",sequences="false",slots="4",timestamps="false"} 1
# HELP shmring_slot_produced_messages_total MPSC: messages written through the producer slot, across its holders.
# TYPE shmring_slot_produced_messages_total counter
shmring_slot_produced_messages_total{ring="events",slot="0"} 7
shmring_slot_produced_messages_total{ring="events",slot="2"} 1
# HELP shmring_slot_dropped_messages_total MPSC: messages the producer slot's holders dropped.
# TYPE shmring_slot_dropped_messages_total counter
shmring_slot_dropped_messages_total{ring="events",slot="0"} 0
shmring_slot_dropped_messages_total{ring="events",slot="2"} 1
# HELP shmring_slot_lost_messages_total MPSC: reservations of the slot's dead holders that the consumer skipped.
# TYPE shmring_slot_lost_messages_total counter
shmring_slot_lost_messages_total{ring="events",slot="0"} 0
shmring_slot_lost_messages_total{ring="events",slot="2"} 0
# HELP shmring_slot_alive MPSC: 1 while a live process holds the producer slot.
# TYPE shmring_slot_alive gauge
shmring_slot_alive{ring="events",slot="0"} 1
shmring_slot_alive{ring="events",slot="2"} 0
`), "shmring_pressure", "shmring_high_watermark_bytes", "shmring_ring_info", "shmring_slot_produced_messages_total",
		"shmring_slot_dropped_messages_total", "shmring_slot_lost_messages_total", "shmring_slot_alive"))
	problems, err := testutil.CollectAndLint(col)
	require.NoError(t, err)
	require.Empty(t, problems)
}
