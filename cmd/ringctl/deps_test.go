package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRingctlDependencies (issue 14): ringctl runs the demo's child
// processes from internal/demo and does not link the benchmark harness
// (package bench, with its embedded C source). It runs "go list -deps"
// (go test puts the go command's directory first in PATH).
func TestRingctlDependencies(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list ringctl's dependencies: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/shmring/shmring/cmd/ringctl").CombinedOutput()
	require.NoError(t, err, "go list -deps: %s", out)
	for _, d := range strings.Fields(string(out)) {
		require.False(t, d == "github.com/shmring/shmring/bench" || strings.HasPrefix(d, "github.com/shmring/shmring/bench/"),
			"ringctl links %s: what the demo needs belongs in internal/demo", d)
	}
}

// TestRingctlImportsNoRing (issue 14): ringctl, tests included, speaks to
// rings through ipc and ops only: no file of it imports package ring
// (ipc still links it) for constants or types.
func TestRingctlImportsNoRing(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list ringctl's imports: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-f", "{{join .Imports \"\\n\"}}\n{{join .TestImports \"\\n\"}}\n{{join .XTestImports \"\\n\"}}",
		"github.com/shmring/shmring/cmd/ringctl").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	imports := strings.Fields(string(out))
	require.Contains(t, imports, "github.com/shmring/shmring/ipc", "the listing is of ringctl's imports")
	require.NotContains(t, imports, "github.com/shmring/shmring/ring", "ringctl imports package ring: use ipc's and ops' values")
}
