package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// startAuthJS starts a JetStream server (store in t.TempDir, a random
// port) with two users: "admin" (password "a"), allowed everything, and
// "bridge" (password "b") with perms; it is shut down when t ends.
func startAuthJS(t *testing.T, perms *server.Permissions) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, Users: []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "bridge", Password: "b", Permissions: perms},
		}})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	require.True(t, srv.ReadyForConnections(deadline))
	return srv
}

// The server's permissions refuse the bridge's publishes to its subject:
// nats.go reports it only to the connection's error callback (the publish
// itself gets no answer, which would time out and be retried forever);
// Run stops with an error naming the subject and the fix, the messages
// staying in the ring. The user not permitted to subscribe to the
// replies' subjects: NewOut's requests get no answer, and it says why.
func TestOutPermissionDenied(t *testing.T) {
	t.Run("publish", func(t *testing.T) {
		srv := startAuthJS(t, &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>"}, Deny: []string{"A.x"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		})
		nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "a"))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		addStream(t, js, "A")

		r, err := ipc.Create(testutil.Name(t), ipc.Config{Kind: ipc.MPSC, Producers: 2, Sequences: true, Capacity: 1 << 14})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		require.NoError(t, <-writeAll(t, r, 1, 10))
		b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.ClientURL(), User: "bridge", Password: "b", Subject: "A.x", Window: 8})
		require.NoError(t, err)
		err = <-runOutErr(t, b)
		require.ErrorIs(t, err, nats.ErrPermissionViolation)
		require.ErrorContains(t, err, `refuses the bridge's publishes to "A.x"`)
		require.ErrorContains(t, err, `allow the bridge's user to publish to "A.x"`)
		t.Log(err)
		st := b.Stats()
		require.Zero(t, st.Released)
		require.Contains(t, st.LastError, "permissions violation")
		checkHeld(t, b, r, prodMsg(1, 1, 17))
	})
	t.Run("subscribe", func(t *testing.T) {
		srv := startAuthJS(t, &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Deny: []string{"_INBOX.>"}},
		})
		nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "a"))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		addStream(t, js, "A")
		r, err := ipc.Create(testutil.Name(t), ipc.Config{Sequences: true, Capacity: 1 << 14})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		// Timeout: the requests' answers never come; a short one keeps the
		// test short (it is no bound on the server's speed: nothing is
		// answered whatever it waits).
		_, err = bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.ClientURL(), User: "bridge", Password: "b", Subject: "A.x",
			Timeout: 500 * time.Millisecond})
		require.ErrorIs(t, err, nats.ErrPermissionViolation)
		require.ErrorContains(t, err, "allow the bridge's user to subscribe to _INBOX.>")
		t.Log(err)
	})
}

// The stream deleted while the bridge runs: every publish is answered "no
// responders", and the bridge's last error says that the stream is not
// found (a request for it finds none), not only that no stream responded.
// (TestOutStreamRecreated runs the whole story.)
func TestOutStreamDeletedSaysSo(t *testing.T) {
	srv := startJS(t, t.TempDir(), 0, 0)
	js := connect(t, srv.ClientURL())
	addStream(t, js, "G")
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Sequences: true, Capacity: 1 << 14})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.ClientURL(), Subject: "G.x", Window: 8})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, js.DeleteStream(ctx, "G"))
	runOut(t, b)
	require.NoError(t, <-writeAll(t, r, 1, 5))
	waitFor(t, "the last error to name the deleted stream", func() bool {
		return strings.Contains(b.Stats().LastError, `stream "G" not found (deleted?)`)
	})
	st := b.Stats()
	t.Log(st.LastError)
	require.Contains(t, st.LastError, "nats stream add G --subjects G.x")
	require.Zero(t, st.Released)
}
