package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// DirCollector is a prometheus.Collector for every ring in a directory,
// found afresh at each scrape: rings that appear are exported, rings that
// disappear stop being exported. Each is opened read-only for the scrape
// (see [ops.List]). Files that are not readable rings count in
// shmring_unreadable_segments, and readable rings whose words fail the
// checks a consumer makes at start ([ops.Validate]: a consumer would fail
// with ipc.ErrCorrupt) in shmring_damaged_segments, their metrics still
// exported; temporary files of Create are left out. A
// ring whose name is not safe to print is labelled with its name quoted
// (see printable.Label). It is safe for concurrent use.
type DirCollector struct {
	dir  string
	opts []ipc.Option
}

// NewDirCollector returns a collector for the rings in dir; opts are
// handed to [ops.List] (and so to [ipc.Open]) at each scrape.
func NewDirCollector(dir string, opts ...ipc.Option) *DirCollector {
	return &DirCollector{dir: dir, opts: opts}
}

var unreadableDesc = prometheus.NewDesc("shmring_unreadable_segments",
	"Files in the directory that could not be read as rings (not a ring, damaged, or not ours).", nil, nil)

var damagedDesc = prometheus.NewDesc("shmring_damaged_segments",
	"Readable rings in the directory whose words are damaged (a consumer would fail with a corrupt-segment error; ringctl doctor says what).", nil, nil)

// Describe sends the descriptors of every metric.
func (c *DirCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics {
		ch <- m.desc
	}
	ch <- delayDesc
	for _, d := range extraDescs {
		ch <- d
	}
	describeBridges(ch)
	ch <- unreadableDesc
	ch <- damagedDesc
}

// Collect lists the directory and sends every ring's metrics.
func (c *DirCollector) Collect(ch chan<- prometheus.Metric) {
	rings, _ := ops.List(c.dir, c.opts...)
	bad, damaged := 0, 0
	for _, ri := range rings {
		if ri.Creating {
			continue
		}
		if ri.Err != nil {
			bad++
			continue
		}
		if ri.Damage != nil {
			damaged++
		}
		emit(ch, ri.Name, ri.Stats, ri.Routing, ri.Bridges)
	}
	ch <- prometheus.MustNewConstMetric(unreadableDesc, prometheus.GaugeValue, float64(bad))
	ch <- prometheus.MustNewConstMetric(damagedDesc, prometheus.GaugeValue, float64(damaged))
}
