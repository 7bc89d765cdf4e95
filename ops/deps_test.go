package ops_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNATSDependencies (issue 15): reading a bridge's state (ops.Bridges,
// the metrics collectors) links no NATS client, and package bridge links
// no nats-server: only ringctl (bridge --embedded, through
// internal/natsembed) and tests do.
func TestNATSDependencies(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list dependencies: %v", err)
	}
	for _, tc := range []struct{ pkg, forbidden string }{
		{"github.com/shmring/shmring/ops", "github.com/nats-io/"},
		{"github.com/shmring/shmring/metrics", "github.com/nats-io/"},
		{"github.com/shmring/shmring/bridge", "github.com/nats-io/nats-server/"},
	} {
		out, err := exec.Command(goCmd, "list", "-deps", tc.pkg).CombinedOutput()
		require.NoError(t, err, "go list -deps %s: %s", tc.pkg, out)
		for _, d := range strings.Fields(string(out)) {
			require.False(t, strings.HasPrefix(d, tc.forbidden), "%s links %s (go list -deps %s shows the chain)", tc.pkg, d, tc.pkg)
		}
	}
}
