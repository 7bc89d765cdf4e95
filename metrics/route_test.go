package metrics_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
	"github.com/shmring/shmring/route"
	"github.com/stretchr/testify/require"
)

func TestRouterCollector(t *testing.T) {
	a, b := newRing(t, ipc.Config{}), newRing(t, ipc.Config{})
	c, err := a.Consumer(nil) // b has no consumer: out of the rotation
	require.NoError(t, err)
	defer c.Close()
	rt, err := route.New([]*ipc.Ring{a, b}, &route.Config{By: route.RoundRobin, Full: ipc.Drop})
	require.NoError(t, err)
	defer rt.Close()
	// Round robin passes b over each time its turn comes: the 2nd and 3rd message.
	for i := 0; i < 3; i++ {
		require.NoError(t, rt.Send(context.Background(), []byte("m")))
	}
	col := metrics.NewRouterCollector("orders", rt)
	an, bn := filepath.Base(a.Path()), filepath.Base(b.Path())
	require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(`
# HELP shmring_route_routed_messages_total Messages the router wrote to the ring.
# TYPE shmring_route_routed_messages_total counter
shmring_route_routed_messages_total{ring="`+an+`",router="orders"} 3
shmring_route_routed_messages_total{ring="`+bn+`",router="orders"} 0
# HELP shmring_route_skipped_messages_total Messages that passed the ring over because it was out of the rotation (consumer dead or stalled).
# TYPE shmring_route_skipped_messages_total counter
shmring_route_skipped_messages_total{ring="`+an+`",router="orders"} 0
shmring_route_skipped_messages_total{ring="`+bn+`",router="orders"} 2
# HELP shmring_route_ring_healthy 1 while the ring is in the router's rotation (its consumer attached and moving), else 0.
# TYPE shmring_route_ring_healthy gauge
shmring_route_ring_healthy{ring="`+an+`",router="orders"} 1
shmring_route_ring_healthy{ring="`+bn+`",router="orders"} 0
# HELP shmring_route_dropped_messages_total Messages no ring took, dropped (the router's Full is Drop, or a wait ended by its context).
# TYPE shmring_route_dropped_messages_total counter
shmring_route_dropped_messages_total{router="orders"} 0
`), "shmring_route_routed_messages_total", "shmring_route_skipped_messages_total", "shmring_route_ring_healthy", "shmring_route_dropped_messages_total"))
	problems, err := testutil.CollectAndLint(col)
	require.NoError(t, err)
	require.Empty(t, problems)
}
