package ipc

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shmring/shmring/shm"
)

// RingInfo is one entry of List.
type RingInfo struct {
	Name  string // the file's name in the directory, exactly (it may be unsafe to print: see printable.Quote)
	Path  string
	Stats Stats
	Err   error // why it could not be read (not a ring, damaged, not ours)

	// Creating marks a temporary file of Create (".NAME.creating-" and 16
	// hex digits), which List does not open: a ring being created, or the
	// leftover of a creator killed before it published the ring. Ring is
	// the NAME it was for. CreatorAlive says whether its creator still runs
	// (true also when that could not be tested; Err then says why): a dead
	// creator's file can go (ringctl doctor NAME --repair).
	Creating     bool
	Ring         string
	CreatorAlive bool
}

// List reads every regular file in dir: each segment (names that start with
// a dot included) opened read-only just long enough to read its counters,
// and each temporary file of Create reported as such (Creating), not
// opened. Files that are not readable rings are listed with their error.
func List(dir string, opts ...Option) ([]RingInfo, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []RingInfo
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info := RingInfo{Name: e.Name(), Path: filepath.Join(dir, e.Name())}
		if !shm.IsSegmentName(e.Name()) {
			l := shm.InspectLeftover(info.Path)
			info.Creating, info.Ring, info.CreatorAlive, info.Err = true, l.Segment, l.CreatorAlive, l.Err
			out = append(out, info)
			continue
		}
		r, err := Open(info.Path, append(opts, WithReadOnly())...)
		if err == nil {
			info.Stats, err = r.Stats()
			_ = r.Close()
		}
		info.Err = err
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DirCollector is a prometheus.Collector for every ring in a directory,
// found afresh at each scrape: rings that appear are exported, rings that
// disappear stop being exported. Each is opened read-only for the scrape.
// Files that are not readable rings count in shmring_unreadable_segments;
// temporary files of Create are left out. A ring whose name is not safe to
// print is labelled with its name quoted (see printable.Label).
type DirCollector struct {
	dir  string
	opts []Option
}

// NewDirCollector returns a collector for the rings in dir.
func NewDirCollector(dir string, opts ...Option) *DirCollector {
	return &DirCollector{dir: dir, opts: opts}
}

var unreadableDesc = prometheus.NewDesc("shmring_unreadable_segments",
	"Files in the directory that could not be read as rings (not a ring, damaged, or not ours).", nil, nil)

// Describe sends the descriptors of every metric.
func (c *DirCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics {
		ch <- m.desc
	}
	ch <- delayDesc
	for _, d := range extraDescs {
		ch <- d
	}
	ch <- unreadableDesc
}

// Collect lists the directory and sends every ring's metrics.
func (c *DirCollector) Collect(ch chan<- prometheus.Metric) {
	rings, _ := List(c.dir, c.opts...)
	bad := 0
	for _, ri := range rings {
		if ri.Creating {
			continue
		}
		if ri.Err != nil {
			bad++
			continue
		}
		emit(ch, ri.Name, ri.Stats)
	}
	ch <- prometheus.MustNewConstMetric(unreadableDesc, prometheus.GaugeValue, float64(bad))
}
