// Package testutil holds helpers shared by the tests of several packages:
// unique segment names that are always cleaned up, and a TestMain wrapper
// that fails the run if a test left anything in /dev/shm.
package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
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
func Main(m *testing.M) {
	code := m.Run()
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
