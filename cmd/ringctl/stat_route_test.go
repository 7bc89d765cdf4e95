package main

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// startRouter runs `ringctl send --route rings --by rr` as a child process
// (a router in a process of its own) and returns its stdin, which it
// routes line by line until it is closed, and a function that waits for
// it to exit and returns its stdout.
func startRouter(t *testing.T, dir, rings string) (io.WriteCloser, func() string) {
	t.Helper()
	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RINGCTL_TEST_ARGS="+strings.Join([]string{"send", "--route", rings, "--by", "rr", "--dir", dir}, "\x1f"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return in, func() string {
		require.NoError(t, cmd.Wait())
		return out.String()
	}
}

// statJSON runs stat --json on ring name in this process (not the
// router's): what it shows comes from the segment.
func statJSON(t *testing.T, dir, name string) statReport {
	t.Helper()
	r := ringctl(t, "", "stat", name, "--json", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	var rep statReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	return rep
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(time.Millisecond) {
		require.Less(t, time.Since(start), time.Minute, "%s: not after a minute", what)
	}
}

// The routing counters of the segment (line 12): ringctl stat shows what a
// router in another process counted, while that router still runs (its
// sampler flushes them), and several routers into one ring add up. A ring
// out of the rotation counts its skips.
func TestStatRoutingCounters(t *testing.T) {
	dir := t.TempDir()
	var cs []*ipc.Consumer
	for _, name := range []string{"A", "B"} { // MPSC: two routers may produce into them at once
		require.Zero(t, ringctl(t, "", "create", name, "--size", "64KiB", "--kind", "mpsc", "--dir", dir).code)
		r, err := ipc.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		c, err := r.Consumer(nil)
		require.NoError(t, err)
		cs = append(cs, c)
	}
	rings := "A,B"

	r := ringctl(t, "", "stat", "A", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.NotContains(t, r.stdout, "routing", "no router yet: no routing section")
	rep := statJSON(t, dir, "A")
	require.Zero(t, rep.Routed)
	require.Nil(t, rep.RoutingFlushed)

	// One router, still running: its sampler brings the counts to the
	// segment, where stat (this process) sees them.
	in, wait := startRouter(t, dir, rings)
	_, err := io.WriteString(in, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n")
	require.NoError(t, err)
	waitUntil(t, "stat shows 5 routed to each ring", func() bool {
		return statJSON(t, dir, "A").Routed == 5 && statJSON(t, dir, "B").Routed == 5
	})
	rep = statJSON(t, dir, "A")
	require.NotNil(t, rep.RoutingFlushed)
	require.Zero(t, rep.Spilled)
	require.Zero(t, rep.Skipped)
	r = ringctl(t, "", "stat", "B", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "routing (every router, summed)")
	require.Contains(t, r.stdout, "routed")
	require.Contains(t, r.stdout, "5 messages")
	require.NoError(t, in.Close())
	require.Contains(t, wait(), "A     5       0        0        healthy")

	// Two routers at once into the same rings: the counts sum.
	in1, wait1 := startRouter(t, dir, rings)
	in2, wait2 := startRouter(t, dir, rings)
	for _, in := range []io.WriteCloser{in1, in2} {
		_, err := io.WriteString(in, strings.Repeat("x\n", 10))
		require.NoError(t, err)
		require.NoError(t, in.Close())
	}
	wait1()
	wait2()
	require.Equal(t, uint64(15), statJSON(t, dir, "A").Routed)
	require.Equal(t, uint64(15), statJSON(t, dir, "B").Routed)
	require.Len(t, drain(t, cs[0]), 15)
	require.Len(t, drain(t, cs[1]), 15)

	// B's consumer goes: a router passes it over, counted in its skips.
	require.NoError(t, cs[1].Close())
	r = ringctl(t, "y\nz\n", "send", "--route", rings, "--by", "rr", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "B     0       0        1        dead\n")
	rep = statJSON(t, dir, "B")
	require.Equal(t, uint64(15), rep.Routed)
	require.Equal(t, uint64(1), rep.Skipped)
	require.Equal(t, uint64(17), statJSON(t, dir, "A").Routed)
}

// A co-tenant scribbling on line 12 changes only the numbers stat shows:
// any value is displayed, as text and as JSON, with no error.
func TestStatRoutingScribbled(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "A", "--size", "4KiB", "--dir", dir).code)
	f, err := os.OpenFile(filepath.Join(dir, "A"), os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	for _, v := range []uint64{^uint64(0), 1 << 63, 1<<63 - 1, 42} {
		var line [32]byte
		for i := 0; i < 4; i++ {
			binary.LittleEndian.PutUint64(line[8*i:], v)
		}
		_, err := f.WriteAt(line[:], shm.HeaderSize+12*128)
		require.NoError(t, err)
		rep := statJSON(t, dir, "A")
		require.Equal(t, v, rep.Routed)
		require.Equal(t, v, rep.Spilled)
		require.Equal(t, v, rep.Skipped)
		require.NotNil(t, rep.RoutingFlushed)
		r := ringctl(t, "", "stat", "A", "--dir", dir)
		require.Zero(t, r.code, r.stderr)
		require.Contains(t, r.stdout, "routing (every router, summed)")
	}
}
