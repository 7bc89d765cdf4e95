package bridge_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// Every message is delivered once and in order into the ring, with either
// acknowledgement policy, into an SPSC ring or an MPSC ring's slot:
// published before the bridge starts and while it runs.
func TestInDeliversInOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		ack  jetstream.AckPolicy
		kind ipc.Kind
		id   int
	}{
		{"ack-all/spsc", jetstream.AckAllPolicy, ipc.SPSC, 0},
		{"ack-explicit/spsc", jetstream.AckExplicitPolicy, ipc.SPSC, 0},
		{"ack-all/mpsc-slot-3", jetstream.AckAllPolicy, ipc.MPSC, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 3000
			srv := natstest.Start(t)
			js := connect(t, srv.URL())
			addStream(t, js, "ORDERS")
			addConsumer(t, js, "ORDERS", "ring", tc.ack)
			require.NoError(t, publish(t, js, "ORDERS.new", 0, n/2, 64))

			cfg := ipc.Config{Kind: tc.kind, Capacity: 1 << 16}
			if tc.kind == ipc.MPSC {
				cfg.Producers = 4
			}
			r, _ := newRing(t, cfg)
			b, err := bridge.NewIn(context.Background(), r, bridge.InConfig{URL: srv.URL(), Stream: "ORDERS", Consumer: "ring", ProducerID: tc.id, Batch: 100})
			require.NoError(t, err)
			runIn(t, b)
			rd := startReader(t, r)
			require.NoError(t, publish(t, js, "ORDERS.new", n/2, n, 64))
			rd.waitAll(t, n)

			waitFor(t, "every message acknowledged", func() bool { return b.Stats().Acked == n })
			st := b.Stats()
			t.Log(st)
			require.EqualValues(t, n, st.Written)
			require.Zero(t, st.Duplicates)
			require.EqualValues(t, n, st.LastSeq)
			require.Equal(t, nats.CONNECTED.String(), st.Connection)
			rs, err := r.Stats()
			require.NoError(t, err)
			require.Zero(t, rs.Drops)
			require.Zero(t, rs.Duplicates)
		})
	}
}

// Bad configuration fails at once, with an error that names the cause and
// the fix.
func TestInBadConfig(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "S")
	addConsumer(t, js, "S", "all", jetstream.AckAllPolicy)
	ctx := context.Background()
	mk := func(tb testing.TB, cfg ipc.Config) *ipc.Ring {
		r, _ := newRing(tb, cfg)
		return r
	}
	for _, tc := range []struct {
		name string
		ring func(testing.TB) *ipc.Ring
		cfg  bridge.InConfig
		is   error
		says string
	}{
		{"unreachable URL", nil, bridge.InConfig{URL: "nats://127.0.0.1:1", Stream: "S", Consumer: "all"},
			nats.ErrNoServers, "is a NATS server running there"},
		{"missing stream", nil, bridge.InConfig{Stream: "NOPE", Consumer: "all"},
			jetstream.ErrStreamNotFound, "nats stream add NOPE"},
		{"missing consumer", nil, bridge.InConfig{Stream: "S", Consumer: "nope"},
			jetstream.ErrConsumerNotFound, "set InConfig.CreateConsumer"},
		{"no stream or consumer named", nil, bridge.InConfig{},
			fs.ErrInvalid, "needs Stream and Consumer"},
		{"ring without sequences", func(tb testing.TB) *ipc.Ring {
			r, err := ipc.Create(testutil.Name(tb), ipc.Config{})
			require.NoError(tb, err)
			tb.Cleanup(func() { _ = r.Close() })
			return r
		}, bridge.InConfig{Stream: "S", Consumer: "all"},
			fs.ErrInvalid, "recreate the ring with ipc.Config{Sequences: true}"},
		{"MPSC ring without a producer ID", func(tb testing.TB) *ipc.Ring { return mk(tb, ipc.Config{Kind: ipc.MPSC}) },
			bridge.InConfig{Stream: "S", Consumer: "all"}, fs.ErrInvalid, "set InConfig.ProducerID"},
		{"consumer without acknowledgements", nil, bridge.InConfig{Stream: "S", Consumer: "none"},
			fs.ErrInvalid, "use AckPolicy all"},
		{"push consumer", nil, bridge.InConfig{Stream: "S", Consumer: "push"},
			jetstream.ErrNotPullConsumer, "give it a pull consumer"},
		{"consumer filtering another subject", nil, bridge.InConfig{Stream: "S", Consumer: "all", Subject: "S.x"},
			fs.ErrInvalid, "fix InConfig.Subject"},
		{"consumer not durable", nil, bridge.InConfig{Stream: "S", Consumer: "ephemeral"},
			fs.ErrInvalid, "use a durable pull consumer"},
		{"ring's producer role held", func(tb testing.TB) *ipc.Ring {
			r := mk(tb, ipc.Config{})
			p, err := r.Producer(nil)
			require.NoError(tb, err)
			tb.Cleanup(func() { _ = p.Close() })
			return r
		}, bridge.InConfig{Stream: "S", Consumer: "all"}, ipc.ErrBusy, "its producer role is held"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.cfg.Consumer {
			case "none":
				addConsumer(t, js, "S", "none", jetstream.AckNonePolicy)
			case "ephemeral":
				_, err := js.CreateConsumer(ctx, "S", jetstream.ConsumerConfig{Name: "ephemeral", AckPolicy: jetstream.AckAllPolicy, InactiveThreshold: time.Hour})
				require.NoError(t, err)
			case "push":
				_, err := js.CreateOrUpdatePushConsumer(ctx, "S", jetstream.ConsumerConfig{Durable: "push", DeliverSubject: "push.here", AckPolicy: jetstream.AckExplicitPolicy})
				require.NoError(t, err)
			}
			var r *ipc.Ring
			if tc.ring != nil {
				r = tc.ring(t)
			} else {
				r = mk(t, ipc.Config{})
			}
			if tc.cfg.URL == "" {
				tc.cfg.URL = srv.URL()
			}
			b, err := bridge.NewIn(ctx, r, tc.cfg)
			require.Nil(t, b)
			require.ErrorIs(t, err, tc.is)
			require.ErrorContains(t, err, tc.says)
			t.Log(err)
			// The ring's producer role is free for a fixed configuration.
			if tc.ring == nil {
				p, err := r.Producer(nil)
				require.NoError(t, err)
				require.NoError(t, p.Close())
			}
		})
	}

	t.Run("stream recreated under a ring", func(t *testing.T) {
		addStream(t, js, "T")
		require.NoError(t, publish(t, js, "T.x", 0, 5, 8))
		r := mk(t, ipc.Config{})
		b, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.URL(), Stream: "T", Consumer: "c", CreateConsumer: true})
		require.NoError(t, err)
		done := runInErr(t, b)
		rd := startReader(t, r)
		rd.waitRead(t, 5)
		require.NoError(t, js.DeleteStream(ctx, "T"))
		addStream(t, js, "T")
		p, err := r.Producer(nil)
		require.ErrorIs(t, err, ipc.ErrBusy) // the bridge still holds it
		require.Nil(t, p)
		// The running bridge finds its consumer gone and the stream not
		// the one it started on: Run stops (TestInDeletedSaysSo).
		err = <-done
		require.ErrorIs(t, err, fs.ErrInvalid)
		require.ErrorContains(t, err, "was deleted and created again since the bridge started")
		require.NoError(t, b.Close())
		_, err = bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.URL(), Stream: "T", Consumer: "c", CreateConsumer: true})
		require.ErrorIs(t, err, fs.ErrInvalid)
		require.ErrorContains(t, err, "the stream was recreated")
	})
}

// CreateConsumer makes a durable pull consumer acknowledging all, filtered
// to Subject; a second bridge finds it and resumes after what the first
// acknowledged.
func TestInCreateConsumer(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "EV")
	require.NoError(t, publish(t, js, "EV.a", 0, 10, 16))
	require.NoError(t, publish(t, js, "EV.b", 1000, 1005, 16)) // filtered out
	r, _ := newRing(t, ipc.Config{})
	cfg := bridge.InConfig{URL: srv.URL(), Stream: "EV", Consumer: "c", Subject: "EV.a", CreateConsumer: true}
	b, err := bridge.NewIn(context.Background(), r, cfg)
	require.NoError(t, err)
	info, err := js.Consumer(context.Background(), "EV", "c")
	require.NoError(t, err)
	require.Equal(t, jetstream.AckAllPolicy, info.CachedInfo().Config.AckPolicy)
	require.Equal(t, "EV.a", info.CachedInfo().Config.FilterSubject)
	require.Empty(t, info.CachedInfo().Config.DeliverSubject)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	rd := startReader(t, r)
	rd.waitRead(t, 10)
	waitFor(t, "acknowledgements", func() bool { return b.Stats().Acked == 10 })
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.NoError(t, b.Close())

	require.NoError(t, publish(t, js, "EV.a", 10, 20, 16))
	b2, err := bridge.NewIn(context.Background(), r, cfg)
	require.NoError(t, err)
	runIn(t, b2)
	rd.waitAll(t, 20)
	waitFor(t, "acknowledgements", func() bool { return b2.Stats().Acked == 10 })
	require.Zero(t, b2.Stats().Duplicates)
	require.EqualValues(t, 10, b2.Stats().Written)
}

// A server that refuses the credentials, and one without JetStream, are
// told apart from an unreachable one.
func TestInBadServer(t *testing.T) {
	start := func(t *testing.T, opts *server.Options) string {
		opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
		srv, err := server.NewServer(opts)
		require.NoError(t, err)
		srv.Start()
		t.Cleanup(srv.Shutdown)
		require.True(t, srv.ReadyForConnections(deadline))
		return srv.ClientURL()
	}
	r, _ := newRing(t, ipc.Config{})
	ctx := context.Background()

	t.Run("credentials refused", func(t *testing.T) {
		url := start(t, &server.Options{Username: "bridge", Password: "right"})
		_, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: url, User: "bridge", Password: "wrong", Stream: "S", Consumer: "c"})
		require.ErrorIs(t, err, nats.ErrAuthorization)
		require.ErrorContains(t, err, "check InConfig.Creds, User and Password")
		t.Log(err)
	})
	t.Run("no JetStream", func(t *testing.T) {
		url := start(t, &server.Options{})
		_, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: url, Stream: "S", Consumer: "c"})
		require.ErrorIs(t, err, nats.ErrNoResponders)
		require.ErrorContains(t, err, "start nats-server with -js")
		t.Log(err)
	})
}
