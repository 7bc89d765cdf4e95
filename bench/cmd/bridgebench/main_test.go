package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/testutil"
)

// testMainEnv makes the test binary run bridgebench's main (its arguments
// bridgebench's), so that the tests run bridgebench as a real process, and
// its children (childEnv) are this binary too.
const testMainEnv = "BRIDGEBENCH_TEST_MAIN"

// testRunEnv marks every process of one test's bridgebench run (children
// inherit it), to find any left behind.
const testRunEnv = "BRIDGEBENCH_TEST_RUN"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec))
	}
	if os.Getenv(testMainEnv) != "" {
		main()
		os.Exit(0)
	}
	testutil.Main(m)
}

// deadline bounds a whole bridgebench run: only a stuck one reaches it.
const deadline = 5 * time.Minute

// bridgebench returns bridgebench (this binary) with args, its processes
// marked with a value of testRunEnv that marked finds.
func bridgebench(t *testing.T, ctx context.Context, args ...string) (*exec.Cmd, string) {
	mark := fmt.Sprintf("%s=%d-%s", testRunEnv, os.Getpid(), t.Name())
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), testMainEnv+"=1", mark)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, mark
}

// marked lists the processes whose environment holds mark, but not.
func marked(t *testing.T, mark string, not int) []int {
	var pids []int
	envs, err := filepath.Glob("/proc/[0-9]*/environ")
	require.NoError(t, err)
	for _, f := range envs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone, or not ours to read
		}
		if !bytes.Contains(append(b, 0), []byte(mark+"\x00")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		require.NoError(t, err)
		if pid != not && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// requireClean checks that bridgebench process pid left no ring in
// /dev/shm and no process of its run.
func requireClean(t *testing.T, mark string, pid int) {
	_, err := os.Stat(filepath.Join("/dev/shm", fmt.Sprintf("bridgebench-%d", pid)))
	require.ErrorIs(t, err, fs.ErrNotExist, "bridgebench left its ring")
	require.Empty(t, marked(t, mark, pid), "bridgebench left processes")
}

// TestRuns: bridgebench runs every case, in both shapes, to its summary
// (each case checks the stream holds every message), and leaves nothing.
func TestRuns(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		shape string
	}{
		{"processes", nil, "shape: producers: 2 processes; bridge: its own process; the server in the parent"},
		{"inproc", []string{"--inproc"}, "shape: in-process (2 producer goroutines, the bridge and the server in one process)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			cmd, mark := bridgebench(t, ctx, append([]string{"--rounds", "1", "--messages", "300", "--paced", "100", "--rate", "2000", "--sizes", "64"}, tc.flags...)...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			lines := strings.Split(string(out), "\n")
			require.Equal(t, tc.shape, lines[0])
			for _, want := range []string{"64 B  bridged/file", "64 B  fast-id/memory", "64 B  paced ring-only", "throughput, msgs/s", "CPU time per message", "raw-id against fast-id", "paced, median"} {
				require.Contains(t, string(out), want)
			}
			requireClean(t, mark, cmd.Process.Pid)
		})
	}
}

// TestChildKilled: a producer process killed in a case fails the run,
// saying which, and bridgebench kills the other children and removes the
// ring.
func TestChildKilled(t *testing.T) {
	for _, kase := range []string{"bridged", "ring-only", "direct"} {
		t.Run(kase, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			// A paced case of 1,000 s: it runs until the test kills a child.
			cmd, mark := bridgebench(t, ctx, "--rounds", "1", "--messages", "10", "--paced", "1000000", "--rate", "1000", "--sizes", "64", "--cases", kase)
			var out testutil.SyncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			require.NoError(t, cmd.Start())
			want := 2 // producers
			if kase == "bridged" {
				want++
			}
			// Poll until every child has exec'd with its role: a child
			// between fork and exec still shows the parent's environment
			// (the mark, but no role yet).
			victim, roles := 0, 0
			for roles < want {
				require.NoError(t, ctx.Err(), "bridgebench's %d children did not appear: %s", want, out.String())
				time.Sleep(10 * time.Millisecond) // polling for a condition, not a timing assumption
				victim, roles = 0, 0
				for _, k := range marked(t, mark, cmd.Process.Pid) {
					env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", k))
					if err != nil || !bytes.Contains(env, []byte(childEnv+"=")) {
						continue
					}
					roles++
					if bytes.Contains(env, []byte(childEnv+`={"Role":"producer"`)) {
						victim = k
					}
				}
			}
			require.NotZero(t, victim, "no producer among bridgebench's children")
			require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
			err := cmd.Wait()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out.String())
			require.Equal(t, 1, ee.ExitCode(), "%s", out.String())
			require.Regexp(t, `paced `+kase+`: producer [01]: signal: killed`, out.String())
			requireClean(t, mark, cmd.Process.Pid)
		})
	}
}
