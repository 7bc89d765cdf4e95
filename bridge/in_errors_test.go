package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
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
