package bridge_test

import (
	"context"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// runInErr runs b on a goroutine and returns a channel with what Run
// returns (an error saying so if it does not return within the deadline);
// when t ends, Run is stopped and b closed.
func runInErr(t *testing.T, b *bridge.In) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done, out := make(chan error, 1), make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	go func() {
		select {
		case err := <-done:
			out <- err
		case <-time.After(deadline):
			cancel()
			<-done
			out <- fmt.Errorf("Run did not return: %v", b.Stats())
		}
	}()
	t.Cleanup(func() { cancel(); _ = b.Close() })
	return out
}

// permJS starts startAuthJS's server with perms for the user "bridge",
// and makes, as "admin", stream A (subjects A.>) with the durable pull
// consumer "in" (AckPolicy all) and n messages on A.x.
func permJS(t *testing.T, perms *server.Permissions, n uint64) (*server.Server, jetstream.JetStream) {
	t.Helper()
	srv := startAuthJS(t, perms)
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "a"))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	addStream(t, js, "A")
	addConsumer(t, js, "A", "in", jetstream.AckAllPolicy)
	require.NoError(t, publish(t, js, "A.x", 0, n, 16))
	return srv, js
}

// The server's permissions refuse what the in-bridge does while it runs:
// its fetches (a publish to the consumer's $JS.API.CONSUMER.MSG.NEXT
// subject), its acknowledgements ($JS.ACK.>), or the subscription of a
// fetch's inbox. The server reports each only to the connection's error
// callback (the fetch or the acknowledgement itself is not answered, which
// would show as timeouts retried forever); Run stops with an error naming
// the subject and the permission to grant. Nothing is lost: a bridge
// allowed everything then delivers every message once, in order.
func TestInPermissionDenied(t *testing.T) {
	const n = 20
	for _, tc := range []struct {
		name  string
		perms *server.Permissions
		says  []string
	}{
		{"fetch", &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>", "$JS.ACK.>"}, Deny: []string{"$JS.API.CONSUMER.MSG.NEXT.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}, []string{`fetches from consumer "in" of stream "A"`, `grant the bridge's user permission to publish to "$JS.API.CONSUMER.MSG.NEXT.A.in"`}},
		{"ack", &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}, []string{`acknowledgements to consumer "in" of stream "A" (publish to "$JS.ACK.A.in.`, `grant the bridge's user permission to publish to "$JS.ACK.A.in.>"`}},
		// The JetStream API's replies come to _INBOX.<id>.<token> (one
		// subscription for all, allowed here), a fetch's to _INBOX.<id>
		// (refused).
		{"inbox", &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.*.*"}},
		}, []string{`refuses the in-bridge's subscription to _INBOX.`, `grant the bridge's user permission to subscribe to "_INBOX.>"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := permJS(t, tc.perms, n)
			r, _ := newRing(t, ipc.Config{Capacity: 1 << 14})
			rd := startReader(t, r)
			b, err := bridge.NewIn(context.Background(), r, bridge.InConfig{URL: srv.ClientURL(), User: "bridge", Password: "b", Stream: "A", Consumer: "in"})
			require.NoError(t, err)
			err = <-runInErr(t, b)
			t.Log(err)
			require.ErrorIs(t, err, nats.ErrPermissionViolation)
			for _, s := range tc.says {
				require.ErrorContains(t, err, s)
			}
			st := b.Stats()
			require.Contains(t, st.LastError, "a permissions violation")
			require.Equal(t, "stopped", st.State)
			if tc.name != "ack" {
				require.Zero(t, st.Written)
			}
			require.NoError(t, b.Close())

			b, err = bridge.NewIn(context.Background(), r, bridge.InConfig{URL: srv.ClientURL(), User: "admin", Password: "a", Stream: "A", Consumer: "in"})
			require.NoError(t, err)
			runIn(t, b)
			rd.waitAll(t, n)
			waitFor(t, "every message acknowledged", func() bool { return b.Stats().LastSeq == n })
		})
	}
}

// NewIn's requests refused (their replies' subscription, or a request's
// subject): they get no answer, and NewIn says why rather than only that
// they timed out.
func TestInPermissionDeniedAtStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		perms *server.Permissions
		says  string
	}{
		{"subscribe", &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Deny: []string{"_INBOX.>"}},
		}, `grant the bridge's user permission to subscribe to "_INBOX.>"`},
		{"stream info", &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.STREAM.INFO.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}, `grant the bridge's user permission to publish to "$JS.API.STREAM.INFO.A"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := permJS(t, tc.perms, 0)
			r, _ := newRing(t, ipc.Config{Capacity: 1 << 14})
			// Timeout: the requests' answers never come; a short one keeps
			// the test short (no bound on the server's speed: nothing is
			// answered whatever it waits).
			b, err := bridge.NewIn(context.Background(), r, bridge.InConfig{URL: srv.ClientURL(), User: "bridge", Password: "b", Stream: "A", Consumer: "in",
				Timeout: 500 * time.Millisecond})
			require.Nil(t, b)
			t.Log(err)
			require.ErrorIs(t, err, nats.ErrPermissionViolation)
			require.ErrorContains(t, err, tc.says)
			require.ErrorContains(t, err, "(and so: ")
			// The ring's producer role is free.
			p, err := r.Producer(nil)
			require.NoError(t, err)
			require.NoError(t, p.Close())
		})
	}
}

// The consumer, or the whole stream, deleted while the bridge runs: Run
// goes on retrying (they may be created again), and its last error names
// what is missing and what to do. The consumer created again, the bridge
// goes on after the ring's last message; the stream created again (its
// sequences starting at 1), Run stops, saying so, rather than taking its
// messages for those the ring holds.
func TestInDeletedSaysSo(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		del      func(js jetstream.JetStream) error
		says     string
		recreate func(t *testing.T, js jetstream.JetStream)
	}{
		{"consumer", func(js jetstream.JetStream) error { return js.DeleteConsumer(ctx, "D", "in") },
			`consumer "in" of stream "D" not found on nats://`, nil},
		{"stream", func(js jetstream.JetStream) error { return js.DeleteStream(ctx, "D") },
			`stream "D" not found on nats://`, nil},
		{"consumer recreated", func(js jetstream.JetStream) error { return js.DeleteConsumer(ctx, "D", "in") },
			`consumer "in" of stream "D" not found on nats://`, func(t *testing.T, js jetstream.JetStream) {
				addConsumer(t, js, "D", "in", jetstream.AckAllPolicy)
			}},
		{"stream recreated", func(js jetstream.JetStream) error { return js.DeleteStream(ctx, "D") },
			`stream "D" not found on nats://`, func(t *testing.T, js jetstream.JetStream) {
				addStream(t, js, "D")
				addConsumer(t, js, "D", "in", jetstream.AckAllPolicy)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t)
			js := connect(t, srv.URL())
			addStream(t, js, "D")
			addConsumer(t, js, "D", "in", jetstream.AckAllPolicy)
			require.NoError(t, publish(t, js, "D.x", 0, 5, 16))
			r, _ := newRing(t, ipc.Config{Capacity: 1 << 14})
			rd := startReader(t, r)
			b, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.URL(), Stream: "D", Consumer: "in"})
			require.NoError(t, err)
			done := runInErr(t, b)
			rd.waitAll(t, 5)
			require.NoError(t, tc.del(js))
			waitFor(t, "errors after the deletion", func() bool { return b.Stats().Errors >= 3 })
			st := b.Stats()
			t.Log(st.LastError)
			require.Contains(t, st.LastError, tc.says)
			require.Contains(t, st.LastError, "(deleted?): the bridge retries")
			if tc.recreate == nil {
				return
			}
			tc.recreate(t, js)
			if tc.name == "stream recreated" {
				err := <-done
				t.Log(err)
				require.ErrorIs(t, err, fs.ErrInvalid)
				require.ErrorContains(t, err, `stream "D" on nats://`)
				require.ErrorContains(t, err, "was deleted and created again since the bridge started")
				require.ErrorContains(t, err, "bridge the new stream into a new ring")
				require.Equal(t, uint64(5), b.Stats().LastSeq)
				require.NoError(t, publish(t, js, "D.x", 5, 10, 16))
				got, err := rd.count()
				require.NoError(t, err)
				require.EqualValues(t, 5, got, "nothing of the new stream in the ring")
				return
			}
			require.NoError(t, publish(t, js, "D.x", 5, 10, 16))
			rd.waitAll(t, 10)
			waitFor(t, "the rest acknowledged", func() bool { return b.Stats().LastSeq == 10 })
		})
	}
}

// The stream deleted and created again, with its consumer, between two
// looks of the bridge's (here between NewIn and Run), so that it never
// finds either missing: the consumer found created anew makes it look at
// the stream, and Run stops rather than taking the new stream's messages,
// whose sequences start again at 1, for those the ring holds.
func TestInStreamRecreatedUnseen(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "U")
	addConsumer(t, js, "U", "in", jetstream.AckAllPolicy)
	require.NoError(t, publish(t, js, "U.x", 0, 5, 16))
	r, _ := newRing(t, ipc.Config{Capacity: 1 << 14})
	rd := startReader(t, r)
	b, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.URL(), Stream: "U", Consumer: "in"})
	require.NoError(t, err)
	stop := runIn(t, b)
	rd.waitAll(t, 5)
	stop()

	b, err = bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.URL(), Stream: "U", Consumer: "in"})
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(ctx, "U"))
	addStream(t, js, "U")
	addConsumer(t, js, "U", "in", jetstream.AckAllPolicy)
	require.NoError(t, publish(t, js, "U.x", 0, 8, 16))
	err = <-runInErr(t, b)
	t.Log(err)
	require.ErrorIs(t, err, fs.ErrInvalid)
	require.ErrorContains(t, err, "was deleted and created again since the bridge started")
	got, err := rd.count()
	require.NoError(t, err)
	require.EqualValues(t, 5, got, "nothing of the new stream in the ring")
	require.Zero(t, b.Stats().Written)
}

// A consumer reset refused (AckPolicy explicit, a dead predecessor's
// deliveries pending): optional, so Run goes on, the refusal counted and
// kept as the last error, and resets no more; every message lands once,
// in order.
func TestInResetPermissionDenied(t *testing.T) {
	ctx := context.Background()
	srv := startAuthJS(t, &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>", "$JS.ACK.>"}, Deny: []string{"$JS.API.CONSUMER.RESET.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	})
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "a"))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	addStream(t, js, "E")
	cons, err := js.CreateConsumer(ctx, "E", jetstream.ConsumerConfig{Durable: "in", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour})
	require.NoError(t, err)
	require.NoError(t, publish(t, js, "E.x", 0, 100, 16))
	// A bridge that fetched 30 and died.
	mb, err := cons.Fetch(30, jetstream.FetchMaxWait(deadline))
	require.NoError(t, err)
	n := 0
	for range mb.Messages() {
		n++
	}
	require.NoError(t, mb.Error())
	require.Equal(t, 30, n)

	r, _ := newRing(t, ipc.Config{Capacity: 1 << 14})
	rd := startReader(t, r)
	// Timeout: the refused reset's answer never comes; a short one keeps
	// the test short (nothing is answered whatever it waits).
	b, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.ClientURL(), User: "bridge", Password: "b", Stream: "E", Consumer: "in",
		Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	runIn(t, b)
	rd.waitAll(t, 100)
	waitFor(t, "the refused reset counted", func() bool { return b.Stats().Errors >= 1 })
	require.NoError(t, publish(t, js, "E.x", 100, 150, 16))
	rd.waitAll(t, 150)
	st := b.Stats()
	t.Log(st, st.LastError)
	require.Zero(t, st.Resets)
	require.EqualValues(t, 30, st.Recovered)
	require.Contains(t, st.LastError, `grant the bridge's user permission to publish to "$JS.API.CONSUMER.RESET.E.in"`)
}

// The stream and its consumer deleted and created again while the bridge
// is paused on the ring's pressure, its consumer having delivered nothing
// since the last resync (created fresh to start after the ring's last
// message): the new consumer's first delivery is 1, no gap, and a sequence
// the ring holds. The bridge looks at the stream before taking it for a
// duplicate, and Run stops, acknowledging nothing, rather than skipping
// the new stream's messages (found on review).
func TestInStreamRecreatedWhilePaused(t *testing.T) {
	const (
		n    = 100
		held = 40 // messages in the ring, stream sequences 1..held
		size = 200
	)
	ctx := context.Background()
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "P")
	require.NoError(t, publish(t, js, "P.x", 0, n, size))
	r, _ := newRing(t, ipc.Config{Capacity: 16 << 10, HighWater: 8 << 10, LowWater: 2 << 10})
	// The ring holds stream sequences 1..held (message i is sequence i+1),
	// from a previous bridge; its consumer starts after them.
	p, err := r.Producer(nil)
	require.NoError(t, err)
	for i := uint64(0); i < held; i++ {
		require.NoError(t, p.WriteSeq(ctx, i+1, payload(i, size)))
	}
	require.NoError(t, p.Close())
	_, err = js.CreateConsumer(ctx, "P", jetstream.ConsumerConfig{Durable: "in", AckPolicy: jetstream.AckAllPolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: held + 1})
	require.NoError(t, err)

	b, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.URL(), Stream: "P", Consumer: "in", Batch: 8})
	require.NoError(t, err)
	done := runInErr(t, b)
	waitFor(t, "the bridge to pause", func() bool { return b.Stats().Paused })
	require.Zero(t, b.Stats().Written, "the ring's pressure raised by what it held")
	require.EqualValues(t, held, b.Stats().LastSeq)

	require.NoError(t, js.DeleteStream(ctx, "P"))
	addStream(t, js, "P")
	addConsumer(t, js, "P", "in", jetstream.AckAllPolicy)
	require.NoError(t, publish(t, js, "P.x", 0, 10, size)) // sequences 1..10, below the ring's last
	rd := startReader(t, r)                                // drains the ring: the bridge fetches again

	err = <-done
	t.Log(err)
	require.ErrorIs(t, err, fs.ErrInvalid)
	require.ErrorContains(t, err, "was deleted and created again since the bridge started")
	st := b.Stats()
	t.Log(st)
	require.NotZero(t, st.Fetched, "the new consumer's deliveries were fetched")
	require.Zero(t, st.Written)
	require.Zero(t, st.Duplicates, "nothing taken for a message the ring holds")
	require.Zero(t, st.Acked)
	cons, err := js.Consumer(ctx, "P", "in")
	require.NoError(t, err)
	info := cons.CachedInfo()
	require.Zero(t, info.AckFloor.Stream, "the new consumer acknowledged nothing")
	require.Zero(t, info.AckFloor.Consumer)
	rd.waitAll(t, held) // the old messages, nothing of the new stream
}
