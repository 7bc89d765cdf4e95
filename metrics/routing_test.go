package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
	"github.com/shmring/shmring/route"
	"github.com/stretchr/testify/require"
)

// The test binary re-executes itself as a child process when childEnv is
// set.
const childEnv = "SHMRING_METRICS_TEST_CHILD"

// runChild runs a child role: "router" routes SHMRING_METRICS_TEST_N
// messages round robin over the rings named in SHMRING_METRICS_TEST_RINGS
// (comma-separated paths), prints "sent", and keeps its router open until
// its stdin ends.
func runChild(role string) error {
	if role != "router" {
		return fmt.Errorf("unknown role %q", role)
	}
	var rings []*ipc.Ring
	for _, path := range strings.Split(os.Getenv("SHMRING_METRICS_TEST_RINGS"), ",") {
		r, err := ipc.Open(path)
		if err != nil {
			return err
		}
		defer r.Close()
		rings = append(rings, r)
	}
	rt, err := route.New(rings, &route.Config{By: route.RoundRobin})
	if err != nil {
		return err
	}
	var n int
	if _, err := fmt.Sscan(os.Getenv("SHMRING_METRICS_TEST_N"), &n); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := rt.Send(context.Background(), []byte("m")); err != nil {
			return err
		}
	}
	fmt.Println("sent")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return rt.Close()
}

// The ring collectors export the routing counters a router in another
// process keeps in the segments, while that router runs.
func TestCollectorRoutingCounters(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	named := map[string]*ipc.Ring{}
	for _, name := range []string{"a", "b"} {
		r, err := ipc.Create(filepath.Join(dir, name), ipc.Config{})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		c, err := r.Consumer(nil) // attached, not reading: in the rotation
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		paths, named[name] = append(paths, r.Path()), r
	}
	col := metrics.NewCollector(named)
	dcol := metrics.NewDirCollector(dir)
	want := func(a, b int) string {
		return fmt.Sprintf(`
# HELP shmring_routed_messages_total Messages routers wrote to the ring, summed over every router routing into it (from the segment; up to one router sample interval behind).
# TYPE shmring_routed_messages_total counter
shmring_routed_messages_total{ring="a"} %d
shmring_routed_messages_total{ring="b"} %d
`, a, b)
	}
	require.NoError(t, promtest.CollectAndCompare(col, strings.NewReader(want(0, 0)), "shmring_routed_messages_total"))

	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=router", "SHMRING_METRICS_TEST_RINGS="+strings.Join(paths, ","), "SHMRING_METRICS_TEST_N=8")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "sent\n", line)

	// The router is still open: its sampler brings the counts to the
	// segments within a sample interval.
	for start := time.Now(); promtest.CollectAndCompare(col, strings.NewReader(want(4, 4)), "shmring_routed_messages_total") != nil; time.Sleep(time.Millisecond) {
		require.Less(t, time.Since(start), time.Minute, "the collector did not show 4 routed to each ring")
	}
	require.NoError(t, promtest.CollectAndCompare(dcol, strings.NewReader(want(4, 4)), "shmring_routed_messages_total"))
	require.NoError(t, promtest.CollectAndCompare(col, strings.NewReader(`
# HELP shmring_spilled_messages_total By-key routing with spill-over: messages keyed to the ring that routers sent to another ring, summed over every router (from the segment).
# TYPE shmring_spilled_messages_total counter
shmring_spilled_messages_total{ring="a"} 0
shmring_spilled_messages_total{ring="b"} 0
# HELP shmring_unhealthy_skips_total Times a message passed the ring over because it was out of a router's rotation (consumer dead or stalled), summed over every router (from the segment).
# TYPE shmring_unhealthy_skips_total counter
shmring_unhealthy_skips_total{ring="a"} 0
shmring_unhealthy_skips_total{ring="b"} 0
`), "shmring_spilled_messages_total", "shmring_unhealthy_skips_total"))
	require.NoError(t, in.Close())
	require.NoError(t, cmd.Wait())
	require.NoError(t, promtest.CollectAndCompare(col, strings.NewReader(want(4, 4)), "shmring_routed_messages_total"))

	for _, c := range []prometheus.Collector{col, dcol} {
		problems, err := promtest.CollectAndLint(c)
		require.NoError(t, err)
		require.Empty(t, problems)
	}
}
