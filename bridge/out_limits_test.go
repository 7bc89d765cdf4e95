package bridge_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sync"
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

// startJS starts a JetStream server with its store in dir on port (0: a
// random one) and max_payload maxPayload (0: the default, 1 MiB); it is
// shut down when t ends.
func startJS(t *testing.T, dir string, port int, maxPayload int32) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		MaxPayload: maxPayload, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	require.True(t, srv.ReadyForConnections(deadline))
	return srv
}

// NewOut refuses a ring whose largest message, with the bridge's headers,
// the stream (its MaxMsgSize) or the server (its max_payload) would never
// take, naming both sizes and the fixes; a ring whose messages fit is taken.
func TestOutMessageTooLargeUpfront(t *testing.T) {
	ctx := context.Background()
	ring := func(t *testing.T, maxMsg uint64) *ipc.Ring {
		r, err := ipc.Create(testutil.Name(t), ipc.Config{Sequences: true, Capacity: 1 << 16, MaxMessage: maxMsg})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	t.Run("stream MaxMsgSize", func(t *testing.T) {
		srv := natstest.Start(t)
		js := connect(t, srv.URL())
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "M", Subjects: []string{"M.>"}, MaxMsgSize: 1024})
		require.NoError(t, err)
		_, err = bridge.NewOut(ctx, ring(t, 2048), bridge.OutConfig{URL: srv.URL(), Subject: "M.x"})
		require.ErrorIs(t, err, fs.ErrInvalid)
		require.ErrorContains(t, err, `takes messages of up to 2048 bytes (its MaxMessage), but stream "M"'s MaxMsgSize is 1024 bytes`)
		require.ErrorContains(t, err, "ringctl create --max-msg")
		require.ErrorContains(t, err, "nats stream edit M --max-msg-size N")
		t.Log(err)
		b, err := bridge.NewOut(ctx, ring(t, 512), bridge.OutConfig{URL: srv.URL(), Subject: "M.x", StrictOrder: true})
		require.NoError(t, err)
		require.NoError(t, b.Close())
	})
	t.Run("server max_payload", func(t *testing.T) {
		srv := startJS(t, t.TempDir(), 0, 4096)
		js := connect(t, srv.ClientURL())
		addStream(t, js, "P")
		_, err := bridge.NewOut(ctx, ring(t, 8192), bridge.OutConfig{URL: srv.ClientURL(), Subject: "P.x"})
		require.ErrorIs(t, err, fs.ErrInvalid)
		require.ErrorContains(t, err, "takes messages of up to 8192 bytes (its MaxMessage), but the server's max_payload at")
		require.ErrorContains(t, err, "raise the server's max_payload")
		t.Log(err)
		b, err := bridge.NewOut(ctx, ring(t, 2048), bridge.OutConfig{URL: srv.ClientURL(), Subject: "P.x"})
		require.NoError(t, err)
		require.NoError(t, b.Close())
	})
}

// runOutErr runs b until Run returns by itself, and returns its error
// (failing t if it does not return); b is closed when t ends.
func runOutErr(t *testing.T, b *bridge.Out) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done, out := make(chan error, 1), make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	var got error
	wait := func() error {
		once.Do(func() {
			select {
			case got = <-done:
			case <-time.After(deadline):
				cancel()
				got = fmt.Errorf("Run did not return: %v", b.Stats())
				<-done
			}
		})
		return got
	}
	t.Cleanup(func() { cancel(); _ = wait(); _ = b.Close() })
	go func() { out <- wait() }()
	return out
}

// checkHeld checks that the first message in r is want: the one Run
// stopped at stayed in the ring.
func checkHeld(t *testing.T, b *bridge.Out, r *ipc.Ring, want []byte) {
	t.Helper()
	require.NoError(t, b.Close())
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var got []byte
	_, err = c.Read(ctx, 1, func(m []byte) { got = append([]byte(nil), m...) })
	require.NoError(t, err)
	require.Equal(t, want, got, "the first message in the ring")
}

// A message the stream or the server refuses for its size, whatever the
// retries (the limit lowered after NewOut), stops Run with an error naming
// the message (its Msg-Id with slot and sequence, its position and size),
// the limit and the fixes; the message stays in the ring.
func TestOutMessageTooLargeRun(t *testing.T) {
	small := func(i uint64) []byte { return prodMsg(1, i, 32) }
	big := prodMsg(1, 2, 1000)
	newRing := func(t *testing.T) *ipc.Ring {
		r, err := ipc.Create(testutil.Name(t), ipc.Config{Sequences: true, Capacity: 1 << 14, MaxMessage: 1024})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	write := func(t *testing.T, r *ipc.Ring, msgs ...[]byte) {
		p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: forever}})
		require.NoError(t, err)
		defer func() { require.NoError(t, p.Close()) }()
		for _, m := range msgs {
			require.NoError(t, p.Write(context.Background(), m))
		}
	}
	// payloadLowered runs a bridge that publishes message 1 and then finds
	// the server restarted with max_payload 600 and its ring holding
	// message 2, of 1000 bytes, and message 3; it returns the bridge, its
	// ring, the server's URL, raise (which restarts the server with the
	// default max_payload) and the error Run returned.
	payloadLowered := func(t *testing.T) (b *bridge.Out, r *ipc.Ring, url string, raise func(), err error) {
		t.Helper()
		dir := t.TempDir()
		srv := startJS(t, dir, 0, 0)
		url = srv.ClientURL()
		js := connect(t, url)
		addStream(t, js, "P")
		r = newRing(t)
		b, err = bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: url, Subject: "P.x", Window: 8, ReconnectWait: 20 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		done := runOutErr(t, b)
		write(t, r, small(1))
		waitFor(t, "message 1 released", func() bool { return b.Stats().Released == 1 })
		port := srv.Addr().(*net.TCPAddr).Port
		restart := func(maxPayload int32) {
			srv.Shutdown()
			srv.WaitForShutdown()
			srv = startJS(t, dir, port, maxPayload)
		}
		restart(600)
		write(t, r, big, small(3))
		return b, r, url, func() { restart(0) }, <-done
	}
	t.Run("stream MaxMsgSize lowered", func(t *testing.T) {
		srv := natstest.Start(t)
		js := connect(t, srv.URL())
		addStream(t, js, "M")
		r := newRing(t)
		b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "M.x", Window: 8})
		require.NoError(t, err)
		done := runOutErr(t, b)
		write(t, r, small(1))
		waitFor(t, "message 1 released", func() bool { return b.Stats().Released == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		_, err = js.UpdateStream(ctx, jetstream.StreamConfig{Name: "M", Subjects: []string{"M.>"}, Storage: jetstream.FileStorage, MaxMsgSize: 600})
		require.NoError(t, err)
		write(t, r, big, small(3))
		err = <-done
		require.ErrorIs(t, err, jetstream.ErrStreamMessageExceedsMaximum)
		require.ErrorContains(t, err, `stream "M" refuses message `)
		require.ErrorContains(t, err, ":0:2 (ring ")
		require.ErrorContains(t, err, "1000 bytes): larger than its MaxMsgSize, 600 bytes with the headers")
		require.ErrorContains(t, err, "nats stream edit M --max-msg-size N")
		require.ErrorContains(t, err, "the message stays in the ring")
		t.Log(err)
		require.EqualValues(t, 1, b.Stats().Released)
		checkHeld(t, b, r, big)
	})
	t.Run("server max_payload lowered", func(t *testing.T) {
		b, r, url, _, err := payloadLowered(t)
		require.ErrorIs(t, err, nats.ErrMaxPayload)
		require.ErrorContains(t, err, ":0:2 (ring ")
		require.ErrorContains(t, err, "1000 bytes) cannot be published to "+url+": with its headers it exceeds the server's max_payload (600 bytes)")
		require.ErrorContains(t, err, "raise max_payload")
		require.ErrorContains(t, err, "the message stays in the ring")
		t.Log(err)
		require.EqualValues(t, 1, b.Stats().Released)
		checkHeld(t, b, r, big)
	})
	// The same, then max_payload raised again and Run called again on the
	// same bridge: the message that failed (published by no one: it was
	// left in the window unsent) goes out with the rest, none missing.
	t.Run("server max_payload lowered then raised, Run again", func(t *testing.T) {
		b, _, url, raise, err := payloadLowered(t)
		require.ErrorIs(t, err, nats.ErrMaxPayload)
		raise()
		runOutErr(t, b)
		waitFor(t, "every message released", func() bool { return b.Stats().Released == 3 })
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		str, err := connect(t, url).Stream(ctx, "P")
		require.NoError(t, err)
		require.EqualValues(t, 3, str.CachedInfo().State.Msgs, "the stream holds the three, once each")
	})
}

// gate is a TCP proxy to a NATS server whose server-to-client direction
// can be held: while held, the client's publishes reach the server (which
// stores them) but no acknowledgement comes back; released, everything
// held is delivered, in order.
type gate struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	held   bool
}

func startGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &gate{ln: ln, target: target}
	g.cond = sync.NewCond(&g.mu)
	t.Cleanup(func() { _ = ln.Close(); g.hold(false) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.serve(c)
		}
	}()
	return g
}

func (g *gate) url() string { return "nats://" + g.ln.Addr().String() }

func (g *gate) hold(on bool) {
	g.mu.Lock()
	g.held = on
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *gate) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
	// Read the server continuously (a server that cannot write would drop
	// the client as slow) and forward, waiting while held.
	chunks := make(chan []byte, 1<<16)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := s.Read(buf)
			if n > 0 {
				chunks <- buf[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	for b := range chunks {
		g.mu.Lock()
		for g.held {
			g.cond.Wait()
		}
		g.mu.Unlock()
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}

// Acknowledgements that never come (held on the way back, so the stream
// stores the publishes but the bridge hears nothing): each publish times
// out after OutConfig.Timeout, the bridge publishes the window again (and
// again); when the acknowledgements flow again the stream holds every
// message once, in order, the re-publishes acknowledged as duplicates.
func TestOutAckTimeout(t *testing.T) {
	const n, window = 400, 32
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "T")
	g := startGate(t, srv.URL()[len("nats://"):])
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Sequences: true, Capacity: 1 << 16}) // room for all n
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: g.url(), Subject: "T.x", Window: window, Timeout: time.Second})
	require.NoError(t, err)
	runOut(t, b)
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: forever}})
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	for i := uint64(1); i <= n/4; i++ {
		require.NoError(t, p.Write(context.Background(), prodMsg(1, i, 16+int(i%100))))
	}
	waitFor(t, "the first messages released", func() bool { return b.Stats().Released == n/4 })

	g.hold(true)
	for i := uint64(n/4 + 1); i <= n; i++ {
		require.NoError(t, p.Write(context.Background(), prodMsg(1, i, 16+int(i%100))))
	}
	waitFor(t, "publishes timed out and published again", func() bool {
		st := b.Stats()
		return st.Retries >= 2 && st.InFlight == window
	})
	st := b.Stats()
	require.Contains(t, st.LastError, jetstream.ErrAsyncPublishTimeout.Error())
	require.Less(t, st.Released, uint64(n), "nothing released without its acknowledgement")
	require.Equal(t, "CONNECTED", st.Connection, "a timeout, not a lost connection")
	g.hold(false)

	waitFor(t, "every message released", func() bool { return b.Stats().Released == n })
	checkProducers(t, readStream(t, js, "T", n), 1, n)
	st = b.Stats()
	t.Log(st, "; last error: ", st.LastError)
	require.NotZero(t, st.Duplicates, "the re-published window's messages the stream had stored")
	require.LessOrEqual(t, st.Duplicates, st.Retries*window)
}
