package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/stretchr/testify/require"
)

// TestBridgeInPermissionDenied: bridge in as a user the server does not
// let acknowledge ($JS.ACK.> refused): the bridge stops (exit 1), saying
// on stderr, as bridge out does, which subject was refused and what
// permission to grant; its last status line carries the error too.
func TestBridgeInPermissionDenied(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, Users: []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "bridge", Password: "b", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		}})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	require.True(t, srv.ReadyForConnections(bridgeDeadline))
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "a"))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), bridgeDeadline)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "P", Subjects: []string{"P.>"}})
	require.NoError(t, err)
	_, err = js.CreateConsumer(ctx, "P", jetstream.ConsumerConfig{Durable: "in", AckPolicy: jetstream.AckAllPolicy})
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		_, err := js.Publish(ctx, "P.x", []byte("m"))
		require.NoError(t, err)
	}

	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	cmd, stdout, stderr := startRingctl(t, nil, "bridge", "in", "r", "--nats", srv.ClientURL(), "--user", "bridge", "--password", "b",
		"--stream", "P", "--consumer", "in", "--dir", dir)
	err = cmd.Wait()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "bridge in stops: %v; %s", err, stderr.String())
	require.Equal(t, 1, exit.ExitCode(), stderr.String())
	t.Log(stderr.String())
	require.Contains(t, stderr.String(), "ringctl bridge: the NATS server at "+srv.ClientURL()+` refuses the in-bridge's acknowledgements to consumer "in" of stream "P"`)
	require.Contains(t, stderr.String(), `grant the bridge's user permission to publish to "$JS.ACK.P.in.>"`)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	require.Contains(t, last, "state=stopped")
	require.Contains(t, last, `last_error="bridge: the NATS server at `)
	require.Contains(t, last, "a permissions violation")
}

// TestBridgeInConsumerDeleted: the consumer deleted under a running bridge
// in: it goes on retrying, its status line's last_error says what is
// missing and how to bring it back, in ringctl's words.
func TestBridgeInConsumerDeleted(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), bridgeDeadline)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "Q", Subjects: []string{"Q.>"}})
	require.NoError(t, err)

	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	cmd, stdout, stderr := startRingctl(t, nil, "bridge", "in", "r", "--nats", srv.URL(), "--stream", "Q", "--consumer", "in", "--create-consumer", "--dir", dir)
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "bridging stream") }, bridgeDeadline, 5*time.Millisecond, stderr.String())
	require.NoError(t, js.DeleteConsumer(ctx, "Q", "in"))
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "(deleted?)") }, bridgeDeadline, 5*time.Millisecond,
		"a status line with the last error: %s", stderr.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a clean stop exits 0: %s", stderr.String())
	out := stdout.String()
	t.Log(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	require.Contains(t, out, `last_error="bridge: consumer \"in\" of stream \"Q\" not found on `+srv.URL()+` (deleted?): the bridge retries`)
	require.Contains(t, out, "restart the bridge with --create-consumer")
}
