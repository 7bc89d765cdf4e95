package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// truncateOnWrite passes writes through and, at the first one, truncates
// the file at path to the header page through a descriptor of its own: a
// command's first output is the moment another process shrinks its ring.
type truncateOnWrite struct {
	w    io.Writer
	path string
	done bool
}

func (t *truncateOnWrite) Write(b []byte) (int, error) {
	if !t.done {
		t.done = true
		f, err := os.OpenFile(t.path, os.O_RDWR, 0)
		if err != nil {
			return 0, err
		}
		err = f.Truncate(shm.HeaderSize)
		f.Close()
		if err != nil {
			return 0, err
		}
	}
	return t.w.Write(b)
}

// ringctlChild runs ringctl in a child process (the test binary
// re-executed), so that a crash fails the test instead of killing it.
func ringctlChild(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RINGCTL_TEST_ARGS="+strings.Join(args, "\x1f"))
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		require.NoError(t, err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// TestTruncatedSegmentCommands: every command that reads a ring, pointed at
// a segment file another process truncated, exits 1 with an error saying
// the file was truncated, to what and from what, and what to do; none
// crashes. Each runs as a child process, where a SIGBUS would show as a
// crash instead of killing the test binary.
func TestTruncatedSegmentCommands(t *testing.T) {
	for _, kind := range []string{"spsc", "mpsc"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			for _, size := range []int64{0, 100, shm.HeaderSize + 512, shm.HeaderSize + 4096 + 64} {
				name := fmt.Sprintf("%s-%d", kind, size)
				r := ringctl(t, "", "create", name, "--dir", dir, "--kind", kind, "--size", "16KiB")
				require.Zero(t, r.code, r.stderr)
				require.Zero(t, ringctl(t, "a\nb\nc\n", "send", name, "--dir", dir).code)
				path := dir + "/" + name
				info, err := os.Stat(path)
				require.NoError(t, err)
				from := info.Size()
				require.NoError(t, os.Truncate(path, size))
				want := fmt.Sprintf("truncated to %d bytes from %d", size, from)
				if size < shm.HeaderSize {
					want = fmt.Sprintf("file of %d bytes is smaller than the 4096-byte segment header", size)
				}
				for _, args := range [][]string{
					{"stat", name}, {"stat", name, "--json"}, {"peek", name}, {"peek", name, "--json"},
					{"doctor", name}, {"doctor", name, "--json"}, {"doctor", name, "--repair"},
					{"watch", name, "--once", "--interval", "1ms"}, {"reset", name}, {"policy", name},
				} {
					res := ringctlChild(t, "", append(args, "--dir", dir)...)
					require.Equal(t, 1, res.code, "%v: %s%s", args, res.stdout, res.stderr)
					require.Contains(t, res.stderr, want, "%v", args)
					require.Contains(t, res.stderr, "truncated", "%v", args)
				}
				res := ringctlChild(t, "", "ls", "--dir", dir)
				require.Zero(t, res.code, res.stderr)
				require.Contains(t, res.stdout, name)
				require.Contains(t, res.stdout, want)
				require.NoError(t, os.Remove(path))
			}
		})
	}
}

// TestWatchTruncatedUnderIt: ringctl watch has the ring mapped when another
// process truncates it (between its first frame and its second): the next
// frame fails with ErrCorrupt saying so, and the process exits 1 instead of
// dying with SIGBUS.
func TestWatchTruncatedUnderIt(t *testing.T) {
	for _, kind := range []ipc.Kind{ipc.SPSC, ipc.MPSC} {
		t.Run(string(kind), func(t *testing.T) {
			dir := t.TempDir()
			r := ringctl(t, "", "create", "w", "--dir", dir, "--kind", string(kind), "--size", "16KiB")
			require.Zero(t, r.code, r.stderr)
			require.Zero(t, ringctl(t, "a\nb\n", "send", "w", "--dir", dir).code)
			path := dir + "/w"
			info, err := os.Stat(path)
			require.NoError(t, err)
			cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "RINGCTL_TEST_ARGS="+strings.Join([]string{"watch", "w", "--dir", dir, "--json", "--interval", "1ms", "--count", "3"}, "\x1f"),
				"RINGCTL_TEST_TRUNCATE="+path)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			require.Error(t, err)
			require.Equal(t, 1, cmd.ProcessState.ExitCode(), "exit 1, not a crash: %s", stderr.String())
			require.Contains(t, stderr.String(), fmt.Sprintf("truncated to %d bytes from %d", shm.HeaderSize, info.Size()))
			require.Contains(t, stderr.String(), "recreate it")
			require.Equal(t, 1, strings.Count(stdout.String(), "\n"), "one frame before the truncation")
		})
	}
}
