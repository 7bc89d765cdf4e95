// Package testutil holds helpers shared by the tests of several packages:
// unique segment names that are always cleaned up, a TestMain wrapper that
// fails the run if a test left anything in /dev/shm (and runs the test
// binary's child roles), child processes bounded in time, one stopped
// inside shm.Create, processes started in a PID namespace of their own, and
// reads and writes of a segment's words through its file, as another
// process would make them.
package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/proc"
)

var seq atomic.Uint64

// Prefix is the start of every segment name this test process makes. Child
// processes inherit names from their parent, never make their own prefix.
func Prefix() string { return fmt.Sprintf("shmring-test-%d-", os.Getpid()) }

// Name returns a fresh bare segment name and removes any file of that name
// (and any temporary file of Create for it) from /dev/shm when t ends.
func Name(t testing.TB) string {
	name := fmt.Sprintf("%s%d", Prefix(), seq.Add(1))
	t.Cleanup(func() {
		_ = os.Remove(filepath.Join("/dev/shm", name))
		temps, _ := filepath.Glob(filepath.Join("/dev/shm", "."+name+".creating-*"))
		for _, tmp := range temps {
			_ = os.Remove(tmp)
		}
	})
	return name
}

// Leftovers lists the files in /dev/shm whose names this process made.
func Leftovers() []string {
	ents, _ := os.ReadDir("/dev/shm")
	var left []string
	for _, e := range ents {
		if strings.HasPrefix(strings.TrimPrefix(e.Name(), "."), Prefix()) {
			left = append(left, e.Name())
		}
	}
	return left
}

// Main runs the tests and then fails the run if any file the tests made is
// left in /dev/shm, removing them so that one failure does not cascade.
func Main(m *testing.M) { MainThen(m, nil) }

// MainThen is Main with a check of the caller's own after the tests: an
// error from after fails the run, as a file left in /dev/shm does.
func MainThen(m *testing.M, after func() error) {
	code := m.Run()
	if after != nil {
		if err := after(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	if left := Leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: tests left %d file(s) in /dev/shm: %v\n", len(left), left)
		for _, n := range left {
			_ = os.Remove(filepath.Join("/dev/shm", n))
		}
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// MainWithChildren is Main for a test binary that re-executes itself as
// child processes of cross-process tests (os/exec's helperCommand pattern):
// when the environment variable env is set, the process is such a child,
// dies with its parent, runs run with env's value (its role) and exits 0,
// or 2 with the error on stderr; otherwise it runs the tests as Main does.
func MainWithChildren(m *testing.M, env string, run func(role string) error) {
	if role := os.Getenv(env); role != "" {
		proc.DieWithParent()
		if err := run(role); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	Main(m)
}

var unshareOK = sync.OnceValue(func() error {
	out, err := exec.Command("unshare", "-p", "-f", "--mount-proc", "true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
})

// InPIDNamespace returns a command that runs this test binary (os.Args[0])
// with args in a new PID namespace, with its own /proc, as a container
// sharing /dev/shm would: `unshare -p -f --mount-proc`. The command's
// process is unshare's; use NamespacedPID for the test binary's. t is
// skipped, saying why, only where unshare is missing or refused (it needs
// root, or CAP_SYS_ADMIN).
func InPIDNamespace(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	if err := unshareOK(); err != nil {
		t.Skipf("cannot start a process in a new PID namespace (`unshare -p -f --mount-proc` needs root): %v", err)
	}
	return exec.Command("unshare", append([]string{"-p", "-f", "--mount-proc", os.Args[0]}, args...)...)
}

// NamespacedPID returns the PID, in this namespace, of the process that
// `unshare -f` (process unsharePID) started in the new namespace: its
// child. It fails t if there is none within a generous deadline.
func NamespacedPID(t testing.TB, unsharePID int) int {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			// Field 4, the parent's PID, counted after the command's ')'.
			f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
			if len(f) > 1 && f[1] == strconv.Itoa(unsharePID) {
				return pid
			}
		}
	}
	t.Fatalf("unshare (PID %d) has no child process", unsharePID)
	return 0
}
