package demo_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/shmring/shmring/internal/demo"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	demo.ChildMain("")
	testutil.Main(m)
}

// TestPair moves messages through an SPSC ring between two real child
// processes, as ringctl demo does, and checks the consumer read them all.
func TestPair(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1 << 12, MaxMessage: 64})
	require.NoError(t, err)
	defer r.Close()
	d, err := demo.Pair(os.Args[0], r.Path(), 5000, 16)
	require.NoError(t, err)
	require.Positive(t, d)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(5000), st.MsgsOut)
	_, err = demo.Pair(os.Args[0], r.Path(), 1, 4)
	require.Error(t, err, "messages must hold the sequence number")
}

// TestGroupMPSC runs an MPSC consumer and two producers, each writing
// its own numbered messages, which the consumer checks per producer.
func TestGroupMPSC(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ring")
	r, err := ipc.Create(path, ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 1 << 12, MaxMessage: 64})
	require.NoError(t, err)
	defer r.Close()
	_, cpu, err := demo.Group(os.Args[0], demo.RoleMPSCConsumer, demo.RoleMPSCProducerBatch, 2, path, "3000", "16", strconv.Itoa(2))
	require.NoError(t, err)
	require.Positive(t, cpu)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(6000), st.MsgsOut)
}

func TestRunChildRoles(t *testing.T) {
	ok, err := demo.RunChild("unix-producer", []string{"x", "1", "64"})
	require.False(t, ok, "not a shmring role: the caller handles it")
	require.NoError(t, err)
	ok, err = demo.RunChild(demo.RoleShmConsumer, []string{"x", "1"})
	require.True(t, ok)
	require.ErrorContains(t, err, "want PATH N SIZE")
}

// TestBridge runs the bridge demo with small counts: two producer
// processes → ring → out-bridge → embedded JetStream → in-bridge → ring →
// a consumer process checking every producer's sequence; the counters
// agree, and the rings and the server's store are removed.
func TestBridge(t *testing.T) {
	dir := t.TempDir()
	res, err := demo.Bridge(os.Args[0], demo.BridgeConfig{Producers: 2, Messages: 3000, Size: 64, Capacity: 64 << 10, Window: 64, Batch: 32, Dir: dir})
	require.NoError(t, err)
	require.EqualValues(t, 6000, res.Verified)
	require.EqualValues(t, 6000, res.StreamMsgs)
	require.EqualValues(t, 6000, res.Out.Released)
	require.EqualValues(t, 6000, res.In.Written)
	require.EqualValues(t, 6000, res.RingOut.MsgsIn)
	require.EqualValues(t, 6000, res.RingIn.MsgsOut)
	require.Zero(t, res.RingOut.Drops+res.RingIn.Drops)
	require.Positive(t, res.Elapsed)
	t.Logf("%v; out %v; in %v", res.Elapsed, res.Out, res.In)
	for _, p := range []string{res.Store, res.RingOutPath, res.RingInPath} {
		_, err := os.Stat(p)
		require.ErrorIs(t, err, os.ErrNotExist, "%s removed", p)
	}
	_, err = demo.Bridge(os.Args[0], demo.BridgeConfig{Producers: 1, Messages: 1, Size: 4, Capacity: 64 << 10})
	require.Error(t, err, "messages must hold the sequence number")
}
