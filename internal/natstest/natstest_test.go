package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/stretchr/testify/require"
)

// A restarted server has the same URL and its streams, messages and
// durable consumers; a client with reconnection on finds it again.
func TestRestartKeepsStore(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.URL()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	_, err = js.CreateConsumer(ctx, "S", jetstream.ConsumerConfig{Durable: "d"})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "s", []byte("kept"))
	require.NoError(t, err)

	require.NoError(t, srv.Restart())
	require.Equal(t, url, srv.URL())

	// The JetStream API answers once the client has reconnected (a request
	// written just before the client saw the connection drop is lost: each
	// gets a short deadline).
	var st jetstream.Stream
	require.Eventually(t, func() bool {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err = js.Stream(rctx, "S")
		return err == nil
	}, time.Minute, 5*time.Millisecond)
	require.EqualValues(t, 1, st.CachedInfo().State.Msgs)
	_, err = js.Consumer(ctx, "S", "d")
	require.NoError(t, err)

	srv.Shutdown()
	srv.Shutdown() // idempotent
}
