package metrics_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
)

// Export a ring's counters to Prometheus; they are read at scrape time.
func ExampleNewCollector() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "events"), ipc.Config{Capacity: 4096})
	defer r.Close()
	p, _ := r.Producer(nil)
	_ = p.Write(context.Background(), []byte("e1"))

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(map[string]*ipc.Ring{"events": r}))
	// http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "shmring_produced_messages_total" {
			fmt.Println(mf.GetName(), mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	// Output: shmring_produced_messages_total 1
}

// Export every ring in a directory, found afresh at each scrape, as
// ringctl serve does; files that are not rings are counted, not exported.
func ExampleNewDirCollector() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "orders"), ipc.Config{Capacity: 4096})
	defer r.Close()
	_ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a ring"), 0o600)

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewDirCollector(dir))
	// http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "shmring_capacity_bytes" && mf.GetName() != "shmring_unreadable_segments" {
			continue
		}
		for _, m := range mf.GetMetric() {
			fmt.Print(mf.GetName())
			for _, l := range m.GetLabel() {
				fmt.Printf(" %s=%q", l.GetName(), l.GetValue())
			}
			fmt.Println("", m.GetGauge().GetValue())
		}
	}
	// Output:
	// shmring_capacity_bytes ring="orders" 4096
	// shmring_unreadable_segments 1
}
