package bridge_test

import (
	"context"
	"os"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// TestInStatusBlock: an in-bridge publishes its state in the ring's line
// 14, which another opening of the ring (read-only, as ringctl and the
// metrics collector open it) reads with ops.Bridges: idle and connected
// after NewIn, its counters while it runs, stopped with the connection
// closed after Close.
func TestInStatusBlock(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "ST")
	addConsumer(t, js, "ST", "ring", jetstream.AckAllPolicy)
	r, name := newRing(t, ipc.Config{Capacity: 1 << 16})
	ro, err := ipc.Open(name, ipc.WithReadOnly())
	require.NoError(t, err)
	defer ro.Close()
	block := func() ops.Bridge {
		bs, err := ops.Bridges(ro)
		require.NoError(t, err)
		require.Len(t, bs, 1)
		require.Equal(t, "in", bs[0].Direction)
		return bs[0]
	}
	bs, err := ops.Bridges(ro)
	require.NoError(t, err)
	require.Empty(t, bs)

	b, err := bridge.NewIn(context.Background(), r, bridge.InConfig{URL: srv.URL(), Stream: "ST", Consumer: "ring", Batch: 100})
	require.NoError(t, err)
	st := block()
	require.Equal(t, "idle", st.State)
	require.Equal(t, "connected", st.Connection)
	require.True(t, st.Up)
	require.EqualValues(t, 100, st.Window)
	require.EqualValues(t, os.Getpid(), st.PID)
	require.False(t, st.Started.After(st.Heartbeat))

	stop := runIn(t, b)
	rd := startReader(t, r)
	require.NoError(t, publish(t, js, "ST.x", 0, 50, 16))
	rd.waitAll(t, 50)
	waitFor(t, "the block to show 50 messages written, acknowledged and marked", func() bool {
		st := block()
		return st.Moved == 50 && st.Acked == 50 && st.Mark == 50
	})
	st = block()
	require.Contains(t, []string{"fetching", "resyncing"}, st.State)
	require.True(t, st.Up)

	stop()
	st = block()
	require.Equal(t, "stopped", st.State)
	require.Equal(t, "closed", st.Connection)
	require.False(t, st.Up)
	require.False(t, st.Stale)
	require.EqualValues(t, 50, st.Moved)
}

// TestOutStatusBlock: an out-bridge publishes its state in the ring's line
// 13, read by another opening of the ring: idle and connected after
// NewOut, its window, publishes, acknowledgements and releases while it
// runs, stopped with the connection closed after Close.
func TestOutStatusBlock(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "OS")
	r, name := newRing(t, ipc.Config{Capacity: 1 << 16})
	ro, err := ipc.Open(name, ipc.WithReadOnly())
	require.NoError(t, err)
	defer ro.Close()
	block := func() ops.Bridge {
		bs, err := ops.Bridges(ro)
		require.NoError(t, err)
		require.Len(t, bs, 1)
		require.Equal(t, "out", bs[0].Direction)
		return bs[0]
	}

	b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "OS.x", Window: 32})
	require.NoError(t, err)
	st := block()
	require.Equal(t, "idle", st.State)
	require.Equal(t, "connected", st.Connection)
	require.True(t, st.Up)
	require.EqualValues(t, 32, st.Window)
	require.EqualValues(t, os.Getpid(), st.PID)

	stop := runOut(t, b)
	p, err := r.Producer(nil)
	require.NoError(t, err)
	for i := uint64(1); i <= 50; i++ {
		require.NoError(t, p.Write(context.Background(), prodMsg(1, i, 16)))
	}
	require.NoError(t, p.Close())
	waitFor(t, "the block to show 50 messages published, acknowledged and released", func() bool {
		st := block()
		return st.Moved >= 50 && st.Acked >= 50 && st.Mark == 50 && st.InFlight == 0
	})
	st = block()
	require.True(t, st.Up)
	require.Contains(t, []string{"reading", "full", "retrying"}, st.State)

	stop()
	st = block()
	require.Equal(t, "stopped", st.State)
	require.Equal(t, "closed", st.Connection)
	require.False(t, st.Up)
	require.EqualValues(t, 50, st.Mark)
}
