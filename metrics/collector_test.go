package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
	"github.com/stretchr/testify/require"
)

func TestCollector(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	require.NoError(t, err)
	defer p.Close()
	for i := 0; i < 9; i++ {
		_ = p.Write(context.Background(), make([]byte, 120))
	}
	col := metrics.NewCollector(map[string]*ipc.Ring{"orders": r})
	require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(`
# HELP shmring_dropped_messages_total Messages dropped because the ring was full.
# TYPE shmring_dropped_messages_total counter
shmring_dropped_messages_total{ring="orders"} 1
# HELP shmring_produced_messages_total Messages written into the ring.
# TYPE shmring_produced_messages_total counter
shmring_produced_messages_total{ring="orders"} 8
# HELP shmring_depth_bytes Bytes published and not yet released (records, headers and padding).
# TYPE shmring_depth_bytes gauge
shmring_depth_bytes{ring="orders"} 1024
# HELP shmring_producer_attached 1 if a live process holds the producer role.
# TYPE shmring_producer_attached gauge
shmring_producer_attached{ring="orders"} 1
`), "shmring_dropped_messages_total", "shmring_produced_messages_total", "shmring_depth_bytes", "shmring_producer_attached"))
	require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(""), "no_such_metric"))
	problems, err := testutil.CollectAndLint(col)
	require.NoError(t, err)
	require.Empty(t, problems)

	// A real scrape over HTTP.
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(col))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), `shmring_full_events_total{ring="orders"} 1`)
	require.Contains(t, string(body), `shmring_capacity_bytes{ring="orders"} 1024`)
}

func TestCollectorDelayHistogram(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 12, Timestamps: true})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	for i := 0; i < 5; i++ {
		require.NoError(t, p.Write(context.Background(), []byte("x")))
	}
	n, err := c.TryRead(10, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 5, n)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(metrics.NewCollector(map[string]*ipc.Ring{"d": r})))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var found bool
	for _, mf := range mfs {
		if mf.GetName() == "shmring_queue_delay_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			require.Equal(t, uint64(5), h.GetSampleCount())
			b := h.GetBucket()
			require.Equal(t, uint64(5), b[len(b)-1].GetCumulativeCount(), "every delay is under 2^31 ns")
			found = true
		}
	}
	require.True(t, found)
	problems, err := testutil.CollectAndLint(metrics.NewCollector(map[string]*ipc.Ring{"d": r}))
	require.NoError(t, err)
	require.Empty(t, problems)
}
