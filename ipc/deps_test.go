package ipc_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// depsHeadroom is how many packages ipc may link beyond the floor: what a
// package that imports only os and golang.org/x/sys/unix links (itself
// included). docs/design.md ("Dependencies") says what the headroom buys.
const depsHeadroom = 20

// goListDeps returns what "go list -deps" prints for pkgs: every package
// they link, each once. go test puts the go command's directory first in
// PATH.
func goListDeps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list dependencies: %v", err)
	}
	out, err := exec.Command(goCmd, append([]string{"list", "-deps"}, pkgs...)...).CombinedOutput()
	require.NoError(t, err, "go list -deps %s: %s", strings.Join(pkgs, " "), out)
	return strings.Fields(string(out))
}

// TestIPCDependencies (issue 14): a producer or consumer binary links ipc
// and must not drag in a network stack, crypto, Prometheus, protobuf or an
// HTTP stack (metrics and ops hold what needs them), and ipc links at most
// depsHeadroom packages beyond the floor that opening a file through os
// and golang.org/x/sys/unix already costs.
func TestIPCDependencies(t *testing.T) {
	deps := goListDeps(t, "github.com/shmring/shmring/ipc")
	var bad []string
	for _, d := range deps {
		if d == "net" || strings.HasPrefix(d, "net/") || strings.Contains(d, "golang.org/x/net/") ||
			d == "crypto" || strings.HasPrefix(d, "crypto/") ||
			strings.Contains(d, "prometheus") || strings.Contains(d, "protobuf") {
			bad = append(bad, d)
		}
	}
	require.Empty(t, bad, "ipc must not link net, crypto, Prometheus, protobuf or net/http (directly or not): "+
		"move what needs them to package metrics or ops, or use golang.org/x/sys/unix (go list -deps ./ipc shows the chain)")

	floor := len(goListDeps(t, "os", "golang.org/x/sys/unix")) + 1 // + the importing package itself
	t.Logf("ipc links %d packages; the floor (a package importing only os and x/sys/unix) is %d; at most %d allowed",
		len(deps), floor, floor+depsHeadroom)
	require.LessOrEqual(t, len(deps), floor+depsHeadroom,
		"ipc links %d packages, more than the floor %d + %d: find the new import with go list -deps ./ipc and "+
			"drop it, or move what needs it out of ipc (docs/design.md, Dependencies)", len(deps), floor, depsHeadroom)
}
