package metrics_test

import (
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { testutil.MainWithChildren(m, childEnv, runChild) }

// newRing creates a ring as cfg says, closed and removed when t ends.
func newRing(t *testing.T, cfg ipc.Config, opts ...ipc.Option) *ipc.Ring {
	t.Helper()
	r, err := ipc.Create(testutil.Name(t), cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}
