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

// Messages the durable consumer delivered to a bridge that died before
// writing them (here: fetched by hand and dropped) are recovered from the
// stream by the next bridge and written first, in order, without waiting
// for the server to redeliver them (AckWait is an hour), and nothing stays
// pending acknowledgement.
func TestInRecoversDeliveriesOfADeadBridge(t *testing.T) {
	for _, ack := range []jetstream.AckPolicy{jetstream.AckAllPolicy, jetstream.AckExplicitPolicy} {
		t.Run(ack.String(), func(t *testing.T) {
			srv := natstest.Start(t)
			js := connect(t, srv.URL())
			addStream(t, js, "R")
			ctx := context.Background()
			cons, err := js.CreateConsumer(ctx, "R", jetstream.ConsumerConfig{Durable: "in", AckPolicy: ack, AckWait: time.Hour})
			require.NoError(t, err)
			require.NoError(t, publish(t, js, "R.x", 0, 200, 16))

			// A bridge that fetched 50 and died.
			mb, err := cons.Fetch(50, jetstream.FetchMaxWait(deadline))
			require.NoError(t, err)
			n := 0
			for range mb.Messages() {
				n++
			}
			require.NoError(t, mb.Error())
			require.Equal(t, 50, n)

			r, _ := newRing(t, ipc.Config{})
			b, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.URL(), Stream: "R", Consumer: "in", Batch: 32})
			require.NoError(t, err)
			runIn(t, b)
			rd := startReader(t, r)
			rd.waitRead(t, 200)
			require.NoError(t, publish(t, js, "R.x", 200, 300, 16))
			rd.waitAll(t, 300)

			st := b.Stats()
			t.Log(st)
			require.EqualValues(t, 50, st.Recovered)
			require.EqualValues(t, 300, st.Written)
			require.EqualValues(t, 300, st.LastSeq)
			// Nothing is left pending: with AckPolicy all, an acknowledgement
			// of a later message covers the 50; with explicit, the bridge
			// reset the consumer past them once it had them in the ring.
			if ack == jetstream.AckExplicitPolicy {
				require.EqualValues(t, 1, st.Resets)
			} else {
				require.Zero(t, st.Resets)
			}
			waitFor(t, "the ack floor past every message", func() bool {
				info, err := cons.Info(ctx)
				return err == nil && info.AckFloor.Stream == 300 && info.NumAckPending == 0
			})
		})
	}
}

// The server shut down and restarted on the same store mid-stream: the
// bridge reconnects and resumes, nothing lost, nothing duplicated.
func TestInServerRestart(t *testing.T) {
	const n = 3000
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "RS")
	addConsumer(t, js, "RS", "in", jetstream.AckAllPolicy)
	r, _ := newRing(t, ipc.Config{Capacity: 1 << 16})
	b, err := bridge.NewIn(context.Background(), r, bridge.InConfig{URL: srv.URL(), Stream: "RS", Consumer: "in", Batch: 64, ReconnectWait: 20 * time.Millisecond})
	require.NoError(t, err)
	runIn(t, b)
	rd := startReader(t, r)
	pubErr := make(chan error, 1)
	go func() { pubErr <- publish(t, js, "RS.x", 0, n, 64) }()

	rd.waitRead(t, n/3)
	srv.Shutdown()
	waitFor(t, "the bridge to see the server gone", func() bool { return b.Stats().Connection != "CONNECTED" })
	require.NoError(t, srv.Restart())
	require.NoError(t, <-pubErr)
	rd.waitAll(t, n)

	st := b.Stats()
	t.Log(st)
	require.GreaterOrEqual(t, st.Reconnects, uint64(1))
	require.EqualValues(t, n, st.LastSeq)
	rs, err := r.Stats()
	require.NoError(t, err)
	require.Zero(t, rs.Drops)
}

// Deliveries the bridge never receives while it runs (here a second client
// fetching from the same durable consumer and dropping what it gets, as a
// lost reply would) show as a skip in the delivery sequence: the bridge
// resyncs and recovers them from the stream, so the ring still gets every
// message once, in order.
func TestInRecoversDeliveriesItMissed(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "G")
	ctx := context.Background()
	cons, err := js.CreateConsumer(ctx, "G", jetstream.ConsumerConfig{Durable: "in", AckPolicy: jetstream.AckAllPolicy, AckWait: time.Hour})
	require.NoError(t, err)
	r, _ := newRing(t, ipc.Config{})
	b, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.URL(), Stream: "G", Consumer: "in", Batch: 8})
	require.NoError(t, err)
	runIn(t, b)
	rd := startReader(t, r)

	// Seven rounds: a pull request of 3 from a second client, waiting in
	// line with the bridge's, then 100 messages published, which serve it.
	const rounds, per = 7, 100
	stolen := 0
	for i := uint64(0); i < rounds; i++ {
		mb, err := cons.Fetch(3, jetstream.FetchMaxWait(deadline))
		require.NoError(t, err)
		require.NoError(t, publish(t, js, "G.x", i*per, (i+1)*per, 16))
		for range mb.Messages() {
			stolen++
		}
		require.NoError(t, mb.Error())
	}
	require.Equal(t, 3*rounds, stolen)
	// A last round without theft, whose deliveries show the skip if the
	// last stolen ones were the round's last.
	n := uint64((rounds + 1) * per)
	require.NoError(t, publish(t, js, "G.x", rounds*per, n, 16))
	rd.waitAll(t, n)
	st := b.Stats()
	t.Logf("%d deliveries stolen, %d messages; %s", stolen, n, st)
	require.NotZero(t, st.Gaps)
	require.GreaterOrEqual(t, st.Recovered, uint64(stolen))
	require.Equal(t, n, st.LastSeq)
}

// A ring recreated (removed and created again) loses what it held: the new
// ring's bridge starts after what the consumer had acknowledged, the
// messages the old ring held unread are gone with it, the rest arrive.
func TestInRingRecreated(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "RC")
	addConsumer(t, js, "RC", "in", jetstream.AckAllPolicy)
	ctx := context.Background()
	cfg := bridge.InConfig{URL: srv.URL(), Stream: "RC", Consumer: "in"}

	old, name := newRing(t, ipc.Config{})
	b, err := bridge.NewIn(ctx, old, cfg)
	require.NoError(t, err)
	stop := runIn(t, b)
	require.NoError(t, publish(t, js, "RC.x", 0, 10, 16))
	waitFor(t, "10 messages acknowledged", func() bool { return b.Stats().Acked == 10 })
	stop()
	require.NoError(t, old.Close())
	require.NoError(t, ipc.Remove(name))

	r, err := ipc.Create(name, ipc.Config{Sequences: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	b, err = bridge.NewIn(ctx, r, cfg)
	require.NoError(t, err)
	runIn(t, b)
	require.NoError(t, publish(t, js, "RC.x", 10, 20, 16))
	rd := startReaderAt(t, r, 10) // the first ten were in the old ring
	rd.waitAll(t, 20)
	require.EqualValues(t, 20, b.Stats().LastSeq)
	require.EqualValues(t, 10, b.Stats().Written)
}

// On a work-queue stream (which requires explicit acknowledgements, and
// deletes what is acknowledged) CreateConsumer makes an explicit consumer;
// deliveries a dead bridge left are recovered, every message lands once,
// and the stream empties as the bridge acknowledges.
func TestInWorkQueue(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	ctx := context.Background()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WQ", Subjects: []string{"WQ.>"}, Retention: jetstream.WorkQueuePolicy})
	require.NoError(t, err)
	require.NoError(t, publish(t, js, "WQ.x", 0, 300, 16))
	r, _ := newRing(t, ipc.Config{})
	cfg := bridge.InConfig{URL: srv.URL(), Stream: "WQ", Consumer: "in", CreateConsumer: true}
	b, err := bridge.NewIn(ctx, r, cfg)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	cons, err := js.Consumer(ctx, "WQ", "in")
	require.NoError(t, err)
	require.Equal(t, jetstream.AckExplicitPolicy, cons.CachedInfo().Config.AckPolicy)

	// A bridge that fetched 40 and died.
	mb, err := cons.Fetch(40, jetstream.FetchMaxWait(deadline))
	require.NoError(t, err)
	for range mb.Messages() {
	}
	require.NoError(t, mb.Error())

	b, err = bridge.NewIn(ctx, r, cfg)
	require.NoError(t, err)
	runIn(t, b)
	rd := startReader(t, r)
	rd.waitAll(t, 300)
	st := b.Stats()
	t.Log(st)
	require.EqualValues(t, 40, st.Recovered)
	require.Zero(t, st.Resets, "no reset on a work-queue stream")
	// The 260 the bridge fetched are acknowledged, so deleted; the 40 it
	// recovered wait for their redelivery (AckWait) to be acknowledged.
	waitFor(t, "the stream to hold only the recovered messages", func() bool {
		s, err := js.Stream(ctx, "WQ")
		return err == nil && s.CachedInfo().State.Msgs == 40
	})
}
