package metrics_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
)

// Export a ring's counters to Prometheus; they are read at scrape time.
func ExampleNewCollector() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "events"), ipc.WithCapacity(4096))
	defer r.Close()
	p, _ := r.Producer()
	_ = p.Write([]byte("e1"))

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
	r, _ := ipc.Create(filepath.Join(dir, "orders"), ipc.WithCapacity(4096))
	defer r.Close()
	_ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a ring"), 0o600)

	col := metrics.NewDirCollector(dir)
	err := testutil.CollectAndCompare(col, strings.NewReader(`
# HELP shmring_capacity_bytes Size of the ring's data area.
# TYPE shmring_capacity_bytes gauge
shmring_capacity_bytes{ring="orders"} 4096
# HELP shmring_unreadable_segments Files in the directory that could not be read as rings (not a ring, damaged, or not ours).
# TYPE shmring_unreadable_segments gauge
shmring_unreadable_segments 1
`), "shmring_capacity_bytes", "shmring_unreadable_segments")
	fmt.Println(err)
	// Output: <nil>
}
