package bridge_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/stretchr/testify/require"
)

// runOut runs b on a goroutine; the function it returns (also called when
// t ends) stops Run, fails t if Run returned an error, and closes b.
func runOut(t testing.TB, b *bridge.Out) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// prodMsg is message i (from 1) of producer k in the out-bridge's tests:
// the producer, the number, then filler up to size bytes.
func prodMsg(k int, i uint64, size int) []byte {
	b := make([]byte, max(size, 16))
	binary.BigEndian.PutUint64(b, uint64(k))
	binary.BigEndian.PutUint64(b[8:], i)
	for j := 16; j < len(b); j++ {
		b[j] = byte(i + uint64(j))
	}
	return b
}

// streamMsg is a message read back from a stream.
type streamMsg struct {
	data []byte
	id   string // its Nats-Msg-Id
}

// readStream reads the whole of stream, in stream order, once it holds n
// messages (waiting for them).
func readStream(t testing.TB, js jetstream.JetStream, stream string, n uint64) []streamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	str, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	waitFor(t, fmt.Sprintf("%d messages in stream %s", n, stream), func() bool {
		info, err := str.Info(ctx)
		return err == nil && info.State.Msgs >= n
	})
	info, err := str.Info(ctx)
	require.NoError(t, err)
	c, err := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	var out []streamMsg
	for uint64(len(out)) < info.State.Msgs {
		mb, err := c.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		for m := range mb.Messages() {
			out = append(out, streamMsg{data: m.Data(), id: m.Headers().Get("Nats-Msg-Id")})
		}
		if err := mb.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			require.NoError(t, err)
		}
		require.NoError(t, ctx.Err(), "reading stream %s", stream)
	}
	return out
}

// checkProducers checks that msgs hold, for each of producers 1 to
// producers, its messages 1 to n exactly once and in order.
func checkProducers(t testing.TB, msgs []streamMsg, producers int, n uint64) {
	t.Helper()
	next := make([]uint64, producers+1)
	for k := range next {
		next[k] = 1
	}
	for x, m := range msgs {
		require.GreaterOrEqual(t, len(m.data), 16, "stream message %d", x+1)
		k, i := int(binary.BigEndian.Uint64(m.data)), binary.BigEndian.Uint64(m.data[8:])
		require.True(t, k >= 1 && k <= producers, "stream message %d from producer %d", x+1, k)
		require.Equal(t, next[k], i, "stream message %d: producer %d's message %d (a loss if above, a duplicate or reordering if below)", x+1, k, next[k])
		require.Equal(t, prodMsg(k, i, len(m.data)), m.data, "stream message %d's payload", x+1)
		next[k]++
	}
	for k := 1; k <= producers; k++ {
		require.Equal(t, n+1, next[k], "producer %d's messages in the stream", k)
	}
	require.Len(t, msgs, producers*int(n))
}
