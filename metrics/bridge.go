package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shmring/shmring/ops"
)

// Bridge metrics: from the bridge blocks in each ring's segment (lines 13
// and 14, ops.Bridges), so any process exports them, for every ring a NATS
// bridge (package bridge) has ever run on, without a registry of bridge
// processes. Labels: ring and direction ("out": ring → stream, "in":
// stream → ring). Counters count since that bridge process started (a
// restarted bridge starts again at 0: a counter reset).

// bridgeMetric is one metric of a bridge block; dir limits it to one
// direction ("" both).
type bridgeMetric struct {
	desc  *prometheus.Desc
	vtype prometheus.ValueType
	dir   string
	value func(ops.Bridge) float64
}

func newBridgeMetric(name, help string, vtype prometheus.ValueType, dir string, value func(ops.Bridge) float64) bridgeMetric {
	return bridgeMetric{prometheus.NewDesc("shmring_bridge_"+name, help, []string{"ring", "direction"}, nil), vtype, dir, value}
}

var bridgeMetrics = []bridgeMetric{
	newBridgeMetric("up", "1 while the bridge's heartbeat (every 100 ms) is fresh and it has not stopped; 0 if it stopped, died or hangs.", prometheus.GaugeValue, "",
		func(b ops.Bridge) float64 { return b2f(b.Up) }),
	newBridgeMetric("heartbeat_age_seconds", "Seconds since the bridge's last heartbeat.", prometheus.GaugeValue, "",
		func(b ops.Bridge) float64 { return b.Age.Seconds() }),
	newBridgeMetric("connected", "1 while the bridge's NATS connection is connected.", prometheus.GaugeValue, "",
		func(b ops.Bridge) float64 { return b2f(b.Connection == "connected") }),
	newBridgeMetric("window_messages", "out: the most publishes awaiting the stream's acknowledgement; in: the fetch batch.", prometheus.GaugeValue, "",
		func(b ops.Bridge) float64 { return float64(b.Window) }),
	newBridgeMetric("in_flight_messages", "out: publishes awaiting the stream's acknowledgement; in: 1 while fetching is paused for the ring's pressure.", prometheus.GaugeValue, "",
		func(b ops.Bridge) float64 { return float64(b.InFlight) }),
	newBridgeMetric("published_messages_total", "out: publishes sent to the stream, re-publishes included.", prometheus.CounterValue, "out",
		func(b ops.Bridge) float64 { return float64(b.Moved) }),
	newBridgeMetric("written_messages_total", "in: messages written into the ring.", prometheus.CounterValue, "in",
		func(b ops.Bridge) float64 { return float64(b.Moved) }),
	newBridgeMetric("acked_messages_total", "out: publishes the stream acknowledged; in: messages acknowledged to the stream, each once the ring held it.", prometheus.CounterValue, "",
		func(b ops.Bridge) float64 { return float64(b.Acked) }),
	newBridgeMetric("released_messages_total", "out: messages released from the ring, acknowledged in order.", prometheus.CounterValue, "out",
		func(b ops.Bridge) float64 { return float64(b.Mark) }),
	newBridgeMetric("last_sequence", "in: the stream sequence up to which every message of the consumer is in the ring.", prometheus.GaugeValue, "in",
		func(b ops.Bridge) float64 { return float64(b.Mark) }),
	newBridgeMetric("duplicate_messages_total", "out: acknowledgements the stream marked duplicate; in: deliveries the ring held already.", prometheus.CounterValue, "",
		func(b ops.Bridge) float64 { return float64(b.Duplicates) }),
	newBridgeMetric("errors_total", "NATS-side failures, each retried.", prometheus.CounterValue, "",
		func(b ops.Bridge) float64 { return float64(b.Errors) }),
	newBridgeMetric("reconnects_total", "Reconnections of the bridge's NATS connection.", prometheus.CounterValue, "",
		func(b ops.Bridge) float64 { return float64(b.Reconnects) }),
}

var bridgeInfoDesc = prometheus.NewDesc("shmring_bridge_info",
	"Always 1; the labels say what the bridge is doing (state: idle, reading, full, retrying, stopped, resyncing, fetching, paused) and its NATS connection's status.",
	[]string{"ring", "direction", "state", "connection"}, nil)

// describeBridges sends the bridge metrics' descriptors.
func describeBridges(ch chan<- *prometheus.Desc) {
	for _, m := range bridgeMetrics {
		ch <- m.desc
	}
	ch <- bridgeInfoDesc
}

// emitBridges sends the metrics of a ring's bridge blocks; name is the
// ring's label, already made printable.
func emitBridges(ch chan<- prometheus.Metric, name string, bs []ops.Bridge) {
	for _, b := range bs {
		for _, m := range bridgeMetrics {
			if m.dir == "" || m.dir == b.Direction {
				ch <- prometheus.MustNewConstMetric(m.desc, m.vtype, m.value(b), name, b.Direction)
			}
		}
		ch <- prometheus.MustNewConstMetric(bridgeInfoDesc, prometheus.GaugeValue, 1, name, b.Direction, b.State, b.Connection)
	}
}
