package metrics

import (
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shmring/shmring/internal/printable"
	"github.com/shmring/shmring/route"
)

// RouterCollector is a prometheus.Collector for a route.Router's own
// counters, which live in the routing process: each ring's routed, spilled
// and skipped messages and its health, and the router's drops and
// overflows. (The router also adds the first three to each ring's segment,
// summed with other routers'; Collector and DirCollector export those, as
// shmring_routed_messages_total and the rest, from any process.) Every metric carries a "router" label with the name
// given to NewRouterCollector, and the per-ring ones a "ring" label with
// the ring's file name. It is safe for concurrent use; the router must stay
// open while it is registered (a closed one reports its last counters).
type RouterCollector struct {
	name string
	rt   *route.Router
}

// NewRouterCollector returns a collector for rt, labelled router=name.
func NewRouterCollector(name string, rt *route.Router) *RouterCollector {
	return &RouterCollector{name: printable.Label(name), rt: rt}
}

var (
	routeRoutedDesc = prometheus.NewDesc("shmring_route_routed_messages_total",
		"Messages the router wrote to the ring.", []string{"router", "ring"}, nil)
	routeSpilledDesc = prometheus.NewDesc("shmring_route_spilled_messages_total",
		"By-key routing with spill-over: messages keyed to the ring that went to another because it was pressured, full or unhealthy.", []string{"router", "ring"}, nil)
	routeSkippedDesc = prometheus.NewDesc("shmring_route_skipped_messages_total",
		"Messages that passed the ring over because it was out of the rotation (consumer dead or stalled).", []string{"router", "ring"}, nil)
	routeHealthyDesc = prometheus.NewDesc("shmring_route_ring_healthy",
		"1 while the ring is in the router's rotation (its consumer attached and moving), else 0.", []string{"router", "ring"}, nil)
	routeLeftDesc = prometheus.NewDesc("shmring_route_ring_left_total",
		"Times the ring left the router's rotation.", []string{"router", "ring"}, nil)
	routeDroppedDesc = prometheus.NewDesc("shmring_route_dropped_messages_total",
		"Messages no ring took, dropped (the router's Full is Drop, or a wait ended by its context).", []string{"router"}, nil)
	routeOverflowedDesc = prometheus.NewDesc("shmring_route_overflowed_messages_total",
		"Messages no ring took, handed to the router's overflow route.", []string{"router"}, nil)
)

// Describe sends the descriptors of every metric.
func (c *RouterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{routeRoutedDesc, routeSpilledDesc, routeSkippedDesc, routeHealthyDesc, routeLeftDesc, routeDroppedDesc, routeOverflowedDesc} {
		ch <- d
	}
}

// Collect reads the router's counters (route.Router.Stats) and sends them.
func (c *RouterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.rt.Stats()
	for _, r := range s.Rings {
		ring := printable.Label(filepath.Base(r.Name))
		ch <- prometheus.MustNewConstMetric(routeRoutedDesc, prometheus.CounterValue, float64(r.Routed), c.name, ring)
		ch <- prometheus.MustNewConstMetric(routeSpilledDesc, prometheus.CounterValue, float64(r.Spilled), c.name, ring)
		ch <- prometheus.MustNewConstMetric(routeSkippedDesc, prometheus.CounterValue, float64(r.Skipped), c.name, ring)
		ch <- prometheus.MustNewConstMetric(routeHealthyDesc, prometheus.GaugeValue, b2f(r.Health == route.Healthy), c.name, ring)
		ch <- prometheus.MustNewConstMetric(routeLeftDesc, prometheus.CounterValue, float64(r.Left), c.name, ring)
	}
	ch <- prometheus.MustNewConstMetric(routeDroppedDesc, prometheus.CounterValue, float64(s.Dropped), c.name)
	ch <- prometheus.MustNewConstMetric(routeOverflowedDesc, prometheus.CounterValue, float64(s.Overflowed), c.name)
}
