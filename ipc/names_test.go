package ipc_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// gatherDirChild gathers metrics.NewDirCollector($SHMRING_T_DIR) and prints
// each sample of shmring_capacity_bytes and shmring_unreadable_segments as
// a JSON line: in a child process, where a panic in the collector fails the
// test instead of killing the test binary.
func gatherDirChild() error {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(metrics.NewDirCollector(os.Getenv("SHMRING_T_DIR"))); err != nil {
		return err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for _, mf := range mfs {
		if mf.GetName() != "shmring_capacity_bytes" && mf.GetName() != "shmring_unreadable_segments" {
			continue
		}
		for _, m := range mf.GetMetric() {
			s := sample{Name: mf.GetName(), Value: m.GetGauge().GetValue()}
			for _, l := range m.GetLabel() {
				s.Ring = l.GetValue()
			}
			if err := enc.Encode(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// sample is one line of gatherDirChild.
type sample struct {
	Name  string  `json:"name"`
	Ring  string  `json:"ring"`
	Value float64 `json:"value"`
}

// startHangInCreate starts a child that stops inside Create for path
// (testutil.HangInCreate) and returns once it is there.
func startHangInCreate(t *testing.T, path string) *exec.Cmd {
	return testutil.StartHangInCreate(t, childEnv+"=hang-in-create", "SHMRING_T_PATH="+path)
}

// TestListNamesAndLeftovers: ops.List shows rings whose names start with a dot,
// and the temporary files of Create (a create in progress, whose creator
// lives, and the leftover of one SIGKILLed mid-way) as such, without
// opening them. The directory collector exports the dot-named ring, labels
// a ring whose file name is not printable (made by renaming, since Create
// refuses such names) quoted instead of panicking on invalid UTF-8, and
// does not count temporary files as unreadable.
func TestListNamesAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".hidden", "plain", "to-rename"} {
		r, err := ipc.Create(filepath.Join(dir, n), ipc.Config{Capacity: 1 << 12})
		require.NoError(t, err)
		require.NoError(t, r.Close())
	}
	odd := "odd\x1b[2J\xff"
	require.NoError(t, os.Rename(filepath.Join(dir, "to-rename"), filepath.Join(dir, odd)))
	startHangInCreate(t, filepath.Join(dir, "coming"))
	dead := startHangInCreate(t, filepath.Join(dir, "dead"))
	require.NoError(t, dead.Process.Kill())
	_ = dead.Wait()

	list, err := ops.List(dir)
	require.NoError(t, err)
	byName := map[string]ops.Entry{}
	for _, ri := range list {
		if ri.Creating {
			byName["creating:"+ri.Ring] = ri
			require.True(t, strings.HasPrefix(ri.Name, "."+ri.Ring+".creating-"), ri.Name)
			continue
		}
		byName[ri.Name] = ri
	}
	require.Len(t, byName, 5, "%v", list)
	for _, n := range []string{".hidden", "plain", odd} {
		require.NoError(t, byName[n].Err, "%q", n)
		require.Equal(t, uint64(1<<12), byName[n].Stats.Capacity, "%q", n)
	}
	require.True(t, byName["creating:coming"].CreatorAlive)
	require.NoError(t, byName["creating:coming"].Err)
	require.False(t, byName["creating:dead"].CreatorAlive)
	require.NoError(t, byName["creating:dead"].Err)

	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=gather-dir", "SHMRING_T_DIR="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "the collector must not crash: %s", stderr.String())
	var samples []sample
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var smp sample
		require.NoError(t, dec.Decode(&smp))
		samples = append(samples, smp)
	}
	require.ElementsMatch(t, []sample{
		{"shmring_capacity_bytes", ".hidden", 4096},
		{"shmring_capacity_bytes", "plain", 4096},
		{"shmring_capacity_bytes", `"odd\x1b[2J\xff"`, 4096},
		{"shmring_unreadable_segments", "", 0},
	}, samples)
}
