package bridge_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// strictOffEnv runs TestOutStrictOrderRefusals without StrictOrder, to see
// the reordering it prevents (the test then expects no order).
const strictOffEnv = "SHMRING_BRIDGE_STRICT_OFF"

// A work-queue stream with a DiscardNew limit far below the window, whose
// consumer removes messages one at a time while the bridge publishes: the
// limit is freed between the publishes of a window over and over, so that
// the stream refuses a publish and has room for the next one already in
// flight. With StrictOrder the stream refuses every publish after a
// refused one (its expectation names the refused message), the bridge
// publishes again from it, and the consumer receives each producer's
// messages once and in order.
func TestOutStrictOrderRefusals(t *testing.T) {
	const producers, n, limit, window = 2, 600, 10, 64
	strict := os.Getenv(strictOffEnv) == ""
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*deadline)
	defer cancel()
	str, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "W", Subjects: []string{"W.>"}, Retention: jetstream.WorkQueuePolicy,
		MaxMsgs: limit, Discard: jetstream.DiscardNew, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	cons, err := str.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour})
	require.NoError(t, err)
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Kind: ipc.MPSC, Producers: producers, Sequences: true, Capacity: 1 << 14})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "W.x", Window: window, StrictOrder: strict})
	require.NoError(t, err)
	runOut(t, b)
	wrote := writeAll(t, r, producers, n)

	// The far end: one message at a time, each acknowledged (removed from
	// the stream, freeing the limit) before the next fetch.
	var got []streamMsg
	for len(got) < producers*n {
		mb, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		require.NoError(t, err)
		for m := range mb.Messages() {
			got = append(got, streamMsg{data: m.Data(), id: m.Headers().Get("Nats-Msg-Id")})
			require.NoError(t, m.DoubleAck(ctx))
		}
		if err := mb.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			require.NoError(t, err)
		}
		require.NoError(t, ctx.Err(), "consuming: %d messages so far; bridge %v", len(got), b.Stats())
	}
	require.NoError(t, <-wrote)
	waitFor(t, "every message released", func() bool { return b.Stats().Released == producers*n })
	st := b.Stats()
	t.Log(st, "; last error: ", st.LastError)
	require.NotZero(t, st.Retries, "the stream refused publishes")
	if !strict {
		// Count, not check, the reorderings.
		late := 0
		next := map[uint64]uint64{}
		for _, m := range got {
			k, i := binary.BigEndian.Uint64(m.data), binary.BigEndian.Uint64(m.data[8:])
			if i < next[k] {
				late++
			}
			next[k] = max(next[k], i)
		}
		t.Logf("without StrictOrder: %d messages landed after a later one of their producer", late)
		return
	}
	checkProducers(t, got, producers, n)
}

// The stream's last Msg-Id, which StrictOrder's expectation is checked
// against, survives a server restart (nats-server rebuilds it from the last
// stored message): a publish expecting it is taken after the restart.
func TestStreamLastMsgIDSurvivesRestart(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "L")
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, err := js.Publish(ctx, "L.x", []byte("one"), jetstream.WithMsgID("ring:0:1"))
	require.NoError(t, err)
	require.NoError(t, srv.Restart())
	waitFor(t, "the stream after the restart", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.Stream(rctx, "L")
		return err == nil
	})
	_, err = js.Publish(ctx, "L.x", []byte("wrong"), jetstream.WithMsgID("ring:0:3"), jetstream.WithExpectLastMsgID("ring:0:2"))
	require.ErrorContains(t, err, "wrong last msg ID: ring:0:1")
	_, err = js.Publish(ctx, "L.x", []byte("two"), jetstream.WithMsgID("ring:0:2"), jetstream.WithExpectLastMsgID("ring:0:1"))
	require.NoError(t, err)
}

// With StrictOrder, another writer of the stream stops Run with an error
// naming it and the fix, the bridge's unacknowledged messages staying in
// the ring: one publishing with its own Msg-Ids at once; one publishing
// without Msg-Id (which a purge resembles) the second time it writes
// between two of the bridge's messages.
func TestOutStrictOtherWriter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ids   bool   // the other writer sets Nats-Msg-Id
		ahead int    // the bridge's messages released before Run stops
		says  string // the other writer's last Msg-Id, as the error says it
	}{
		{"with Msg-Id", true, 1, `its last message's Nats-Msg-Id is "other-1"`},
		{"without Msg-Id", false, 2, "its last message's Nats-Msg-Id is none (a message without Nats-Msg-Id, or the stream purged)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t)
			js := connect(t, srv.URL())
			addStream(t, js, "X")
			r, err := ipc.Create(testutil.Name(t), ipc.Config{Sequences: true, Capacity: 1 << 12})
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Close() })
			b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "X.x", Window: 8, StrictOrder: true})
			require.NoError(t, err)
			defer func() { require.NoError(t, b.Close()) }()
			done := make(chan error, 1)
			returned := false
			ctx, cancel := context.WithCancel(context.Background())
			defer func() {
				cancel()
				if !returned {
					<-done
				}
			}()
			go func() { done <- b.Run(ctx) }()
			p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: forever}})
			require.NoError(t, err)
			defer func() { _ = p.Close() }()
			other := 0
			otherWrites := func() {
				other++
				pctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				var opts []jetstream.PublishOpt
				if tc.ids {
					opts = append(opts, jetstream.WithMsgID(fmt.Sprintf("other-%d", other)))
				}
				_, err := js.Publish(pctx, "X.x", []byte("another writer's"), opts...)
				require.NoError(t, err)
			}

			// The bridge's message i, released; then the other writer's.
			for i := uint64(1); i <= uint64(tc.ahead); i++ {
				require.NoError(t, p.Write(context.Background(), prodMsg(1, i, 32)))
				waitFor(t, fmt.Sprintf("message %d released", i), func() bool { return b.Stats().Released == i })
				otherWrites()
			}
			// The next message's expectation meets the other writer's.
			next := uint64(tc.ahead + 1)
			require.NoError(t, p.Write(context.Background(), prodMsg(1, next, 32)))
			var runErr error
			select {
			case runErr = <-done:
				returned = true
			case <-time.After(deadline):
				t.Fatalf("Run did not stop: %v", b.Stats())
			}
			require.ErrorContains(t, runErr, `stream "X" has another writer`)
			require.ErrorContains(t, runErr, tc.says)
			require.ErrorContains(t, runErr, "turn StrictOrder off")
			t.Log(runErr)
			st := b.Stats()
			require.EqualValues(t, tc.ahead, st.Released)
			require.Equal(t, runErr.Error(), st.LastError)
			require.NoError(t, b.Close())

			// The refused message is still in the ring.
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			defer func() { require.NoError(t, c.Close()) }()
			var msg []byte
			rctx, rcancel := context.WithTimeout(context.Background(), deadline)
			defer rcancel()
			_, err = c.Read(rctx, 1, func(m []byte) { msg = append([]byte(nil), m...) })
			require.NoError(t, err)
			require.Equal(t, prodMsg(1, next, 32), msg)
		})
	}
}
