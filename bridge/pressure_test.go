package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// With nobody reading the ring, the bridge stops fetching (never dropping,
// acknowledging only what the ring holds) and holds at most a batch; once a
// consumer drains the ring it resumes, and every message arrives in order.
// With pressure levels the bridge pauses at the high one, before the ring
// is full; without, it waits inside its write for room.
func TestInBackpressure(t *testing.T) {
	const (
		n     = 1500
		size  = 200 // 300 KB in all, the ring 16 KiB
		batch = 16
	)
	for _, tc := range []struct {
		name     string
		high     uint64
		low      uint64
		pressure bool
	}{
		{"pressure", 8 << 10, 2 << 10, true},
		{"full", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t)
			js := connect(t, srv.URL())
			addStream(t, js, "BP")
			addConsumer(t, js, "BP", "in", jetstream.AckAllPolicy)
			require.NoError(t, publish(t, js, "BP.x", 0, n, size))
			r, _ := newRing(t, ipc.Config{Capacity: 16 << 10, HighWater: tc.high, LowWater: tc.low})
			b, err := bridge.NewIn(context.Background(), r, bridge.InConfig{URL: srv.URL(), Stream: "BP", Consumer: "in", Batch: batch})
			require.NoError(t, err)
			runIn(t, b)

			invariants := func(st bridge.InStats) {
				t.Helper()
				require.LessOrEqual(t, st.Acked, st.Written, "acknowledged only what the ring holds")
				require.LessOrEqual(t, st.Fetched, st.Written+batch, "at most a batch held")
				rs, err := r.Stats()
				require.NoError(t, err)
				require.Zero(t, rs.Drops)
			}
			if tc.pressure {
				waitFor(t, "the bridge to pause", func() bool { return b.Stats().Paused })
				st := b.Stats()
				invariants(st)
				// While paused (nobody reads, the pressure cannot fall), it
				// looks at the ring 50 more times and fetches nothing.
				waitFor(t, "50 looks at the pressure", func() bool { return b.Stats().PauseChecks >= st.PauseChecks+50 })
				st2 := b.Stats()
				require.True(t, st2.Paused)
				require.Equal(t, st.Fetched, st2.Fetched, "fetched while paused")
				require.Equal(t, st.Written, st2.Written)
				invariants(st2)
			} else {
				waitFor(t, "the ring to fill", func() bool {
					rs, err := r.Stats()
					return err == nil && rs.FullEvents > 0 && rs.ProducerParks > 0
				})
				invariants(b.Stats())
			}
			info, err := js.Consumer(context.Background(), "BP", "in")
			require.NoError(t, err)
			require.NotZero(t, info.CachedInfo().NumPending, "messages left in the stream")

			rd := startReader(t, r)
			rd.waitAll(t, n)
			waitFor(t, "every message acknowledged", func() bool { return b.Stats().Acked == n })
			st := b.Stats()
			t.Log(st)
			invariants(st)
			require.EqualValues(t, n, st.Written)
			if tc.pressure {
				require.GreaterOrEqual(t, st.Pauses, uint64(1))
			}
		})
	}
}

// The delay level, raised while records wait longer than the target, falls
// only when the consumer reads one that waited less: here never (a target
// of a nanosecond). The bridge honours it while the ring holds messages and
// fetches again once the consumer has drained them, rather than waiting
// for ever over an empty ring.
func TestInDelayPressure(t *testing.T) {
	const n = 1000
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "DP")
	addConsumer(t, js, "DP", "in", jetstream.AckAllPolicy)
	r, _ := newRing(t, ipc.Config{TargetDelay: time.Nanosecond, DelayInterval: time.Nanosecond})
	b, err := bridge.NewIn(context.Background(), r, bridge.InConfig{URL: srv.URL(), Stream: "DP", Consumer: "in", Batch: 50})
	require.NoError(t, err)
	runIn(t, b)
	rd := startReader(t, r)
	require.NoError(t, publish(t, js, "DP.x", 0, n, 16))
	rd.waitAll(t, n)
	rs, err := r.Stats()
	require.NoError(t, err)
	require.True(t, rs.Pressure.Delay, "the delay level is raised")
	t.Log(b.Stats())
}
