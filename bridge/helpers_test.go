package bridge_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// childEnv makes the test binary a child process running an in-bridge
// (os/exec's helperCommand pattern); its configuration is in the env* variables.
const (
	childEnv     = "SHMRING_BRIDGE_TEST_CHILD"
	envURL       = "SHMRING_BRIDGE_T_URL"
	envStream    = "SHMRING_BRIDGE_T_STREAM"
	envConsumer  = "SHMRING_BRIDGE_T_CONSUMER"
	envRing      = "SHMRING_BRIDGE_T_RING"
	envBatch     = "SHMRING_BRIDGE_T_BATCH"
	envProducers = "SHMRING_BRIDGE_T_PRODUCER_ID"
)

func TestMain(m *testing.M) { testutil.MainWithChildren(m, childEnv, runChild) }

// runChild runs an in-bridge until it is killed (or another role: the
// out-bridge of TestOutRSSFlat, out_kill_test.go's).
func runChild(role string) error {
	if role == bpRSSRole {
		return bpRSSChild()
	}
	if role != "in" {
		return runOutChild(role) // out_kill_test.go
	}
	r, err := ipc.Open(os.Getenv(envRing))
	if err != nil {
		return err
	}
	batch, _ := strconv.Atoi(os.Getenv(envBatch))
	id, _ := strconv.Atoi(os.Getenv(envProducers))
	b, err := bridge.NewIn(context.Background(), r, bridge.InConfig{
		URL:           os.Getenv(envURL),
		Stream:        os.Getenv(envStream),
		Consumer:      os.Getenv(envConsumer),
		Batch:         batch,
		ProducerID:    id,
		ReconnectWait: 20 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	return b.Run(context.Background())
}

// deadline bounds every wait on a condition: only a stuck test meets it.
const deadline = 90 * time.Second

// forever is a peer timeout no test run reaches: the ring's consumer
// waits for the bridge across its restarts.
const forever = time.Hour

// waitFor waits for cond, failing t with what after the deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, deadline, 2*time.Millisecond, "waiting for %s", what)
}

// connect opens a NATS connection for the test's own publishing and
// administration, reconnecting forever, closed when t ends.
func connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// addStream makes stream name on subjects name+".>".
func addStream(t testing.TB, js jetstream.JetStream, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)
}

// addConsumer makes a durable pull consumer of stream with ack policy ack.
func addConsumer(t testing.TB, js jetstream.JetStream, stream, durable string, ack jetstream.AckPolicy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: durable, AckPolicy: ack})
	require.NoError(t, err)
}

// payload is message i of a test: its number, then filler up to size bytes.
func payload(i uint64, size int) []byte {
	b := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(b, i)
	for k := 8; k < len(b); k++ {
		b[k] = byte(i + uint64(k))
	}
	return b
}

// publish publishes messages from to to-1 on subj, each until the stream
// acknowledges it: with its number as the message ID, so that a retry after
// a lost acknowledgement (a server going away) is stored once.
func publish(t testing.TB, js jetstream.JetStream, subj string, from, to uint64, size int) error {
	for i := from; i < to; i++ {
		end := time.Now().Add(deadline)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := js.Publish(ctx, subj, payload(i, size), jetstream.WithMsgID(strconv.FormatUint(i, 10)))
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(end) {
				return fmt.Errorf("publish message %d: %w", i, err)
			}
			time.Sleep(10 * time.Millisecond) // a retry's pause, not a synchronisation
		}
	}
	return nil
}

// newRing creates a ring with sequences (cfg as given otherwise), removed
// when t ends.
func newRing(t testing.TB, cfg ipc.Config) (*ipc.Ring, string) {
	t.Helper()
	cfg.Sequences = true
	name := testutil.Name(t)
	r, err := ipc.Create(name, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r, name
}

// reader is the ring's consumer in a test: it reads every message, checks
// that each is the next number (nothing lost, duplicated or reordered), and
// counts them.
type reader struct {
	mu   sync.Mutex
	next uint64 // the number the next message must carry
	err  error  // the first message out of order
	done chan struct{}
	stop context.CancelFunc
}

// startReader starts reading r on a goroutine until t ends.
func startReader(t testing.TB, r *ipc.Ring) *reader {
	t.Helper()
	return startReaderAt(t, r, 0)
}

// startReaderAt is startReader for a ring whose first message is number
// first.
func startReaderAt(t testing.TB, r *ipc.Ring, first uint64) *reader {
	t.Helper()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{PeerTimeout: forever}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	rd := &reader{next: first, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(rd.done)
		defer c.Close()
		for ctx.Err() == nil {
			_, err := c.Read(ctx, 256, rd.check)
			if err != nil && ctx.Err() == nil && !errors.Is(err, ipc.ErrPeerDead) {
				rd.fail(fmt.Errorf("read: %w", err))
				return
			}
		}
	}()
	t.Cleanup(func() {
		rd.close()
		if _, err := rd.count(); err != nil {
			t.Errorf("ring reader: %v", err)
		}
	})
	return rd
}

func (rd *reader) check(msg []byte) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if len(msg) < 8 {
		rd.failLocked(fmt.Errorf("message %d: %d bytes", rd.next, len(msg)))
		return
	}
	if got := binary.BigEndian.Uint64(msg); got != rd.next {
		rd.failLocked(fmt.Errorf("message %d out of order: got %d (a loss if above, a duplicate if below)", rd.next, got))
		rd.next = got
	}
	rd.next++
}

func (rd *reader) fail(err error) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.failLocked(err)
}

func (rd *reader) failLocked(err error) {
	if rd.err == nil {
		rd.err = err
	}
}

// count returns how many messages were read in order, and the first error.
func (rd *reader) count() (uint64, error) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.next, rd.err
}

// close stops the reader and waits for it.
func (rd *reader) close() {
	rd.stop()
	<-rd.done
}

// waitRead waits until rd has read at least n messages, failing t at the
// first out of order.
func (rd *reader) waitRead(t testing.TB, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages in the ring", n), func() bool {
		got, err := rd.count()
		return err != nil || got >= n
	})
	_, err := rd.count()
	require.NoError(t, err)
}

// waitAll waits until rd has read the n messages of a test, and fails t if
// one was out of order or it read more.
func (rd *reader) waitAll(t testing.TB, n uint64) {
	t.Helper()
	rd.waitRead(t, n)
	got, _ := rd.count()
	require.Equal(t, n, got, "messages read")
}

// runIn runs b on a goroutine; the function it returns (also called when t
// ends) stops Run, fails t if Run returned anything but the cancellation,
// and closes b.
func runIn(t testing.TB, b *bridge.In) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
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
