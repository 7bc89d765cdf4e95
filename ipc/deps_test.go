package ipc_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIPCDependencies (issue 14): a producer or consumer binary links ipc
// and must not drag in Prometheus, protobuf or an HTTP stack; those belong
// to package metrics. It runs "go list -deps" (go test puts the go
// command's directory first in PATH).
func TestIPCDependencies(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list ipc's dependencies: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", "github.com/shmring/shmring/ipc").CombinedOutput()
	require.NoError(t, err, "go list -deps: %s", out)
	deps := strings.Fields(string(out))
	var bad []string
	for _, d := range deps {
		if strings.Contains(d, "prometheus") || strings.Contains(d, "protobuf") || strings.HasPrefix(d, "net/http") {
			bad = append(bad, d)
		}
	}
	require.Empty(t, bad, "ipc must not import Prometheus, protobuf or net/http (directly or not): "+
		"move what needs them to package metrics (or another package on top of ipc)")
	t.Logf("ipc links %d packages", len(deps))
}
