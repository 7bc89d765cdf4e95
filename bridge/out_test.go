package bridge_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// Producers → ring → out-bridge → stream: every message lands once, in
// order per producer, with its Nats-Msg-Id (slot and sequence in a ring
// with sequences, the ring position without), and the bridge releases all.
// An MPSC ring's bridge publishes on one connection per slot by default
// (4 here), on the connections asked for (2: two producers' on each), and
// the producer's order holds without sequences too (the slot is in every
// record's header); an SPSC ring's on one.
func TestOutEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       ipc.Config
		producers int
		conns     int // OutConfig.Conns
		want      int // OutStats.Conns
	}{
		{"mpsc/sequences", ipc.Config{Kind: ipc.MPSC, Producers: 4, Sequences: true, Capacity: 1 << 14}, 4, 0, 4},
		{"mpsc/sequences/2-conns", ipc.Config{Kind: ipc.MPSC, Producers: 4, Sequences: true, Capacity: 1 << 14}, 4, 2, 2},
		{"mpsc/no-sequences", ipc.Config{Kind: ipc.MPSC, Producers: 3, Capacity: 1 << 14}, 3, 0, 3},
		{"spsc/no-sequences", ipc.Config{Capacity: 1 << 14}, 1, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 2000
			srv := natstest.Start(t)
			js := connect(t, srv.URL())
			addStream(t, js, "O")
			name := testutil.Name(t)
			r, err := ipc.Create(name, tc.cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Close() })

			b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "O.x", Window: 64, Conns: tc.conns})
			require.NoError(t, err)
			require.Equal(t, "O", b.Stats().Stream)
			require.Equal(t, tc.want, b.Stats().Conns)
			runOut(t, b)

			var wg sync.WaitGroup
			errs := make(chan error, tc.producers)
			for k := 1; k <= tc.producers; k++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: forever}})
					if err != nil {
						errs <- err
						return
					}
					defer p.Close()
					for i := uint64(1); i <= n; i++ {
						if err := p.Write(context.Background(), prodMsg(k, i, 16+int(i%100))); err != nil {
							errs <- fmt.Errorf("producer %d message %d: %w", k, i, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			total := uint64(tc.producers * n)
			waitFor(t, "every message released", func() bool { return b.Stats().Released == total })
			msgs := readStream(t, js, "O", total)
			checkProducers(t, msgs, tc.producers, n)

			id := docID(name, ops.Header(r).CreatedNanos) + ":"
			require.Equal(t, id, b.ID()+":")
			ids := map[string]bool{}
			for _, m := range msgs {
				require.True(t, strings.HasPrefix(m.id, id), "Msg-Id %q", m.id)
				rest := strings.TrimPrefix(m.id, id)
				if tc.cfg.Sequences {
					require.Regexp(t, `^[0-9]+:[1-9][0-9]*$`, rest, "Msg-Id %q", m.id)
				} else {
					require.Regexp(t, `^p[1-9][0-9]*$`, rest, "Msg-Id %q", m.id)
				}
				require.False(t, ids[m.id], "Msg-Id %q twice", m.id)
				ids[m.id] = true
			}
			st := b.Stats()
			require.Equal(t, total, st.Acked)
			require.Equal(t, total, st.Published)
			require.Zero(t, st.Errors, st.LastError)
			require.Zero(t, st.Duplicates)
			require.Zero(t, st.InFlight)
			rs, err := r.Stats()
			require.NoError(t, err)
			require.Zero(t, rs.Depth)
			t.Log(st)
		})
	}
}

// writeAll writes messages 1 to n of producers 1 to producers into r, each
// from a goroutine of its own (producer k in slot k of an MPSC ring), and
// returns a channel that yields the first error, or nil once all are in.
func writeAll(t testing.TB, r *ipc.Ring, producers int, n uint64) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for k := 1; k <= producers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := &ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: forever}}
			if producers > 1 {
				cfg.ID = k
			}
			p, err := r.Producer(cfg)
			if err != nil {
				errs <- err
				return
			}
			defer p.Close()
			for i := uint64(1); i <= n; i++ {
				if err := p.Write(context.Background(), prodMsg(k, i, 16+int(i%100))); err != nil {
					errs <- fmt.Errorf("producer %d message %d: %w", k, i, err)
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(errs)
		done <- <-errs
	}()
	return done
}

// The server shut down and restarted on the same store while producers
// write: the bridge's publishes fail, it re-publishes the window once the
// connections are back, and the stream ends with every message once, in
// order per producer. By default the bridge publishes on two connections
// here (one per producer slot), each producer's messages on one of them;
// with 3 producers on 2 connections, two producers share one.
func TestOutServerRestart(t *testing.T) {
	t.Run("default", func(t *testing.T) { outServerRestart(t, false, 2, 0) })
	t.Run("3-producers-2-conns", func(t *testing.T) { outServerRestart(t, false, 3, 2) })
	// With StrictOrder: the stream's last Msg-Id survives the restart
	// (TestStreamLastMsgIDSurvivesRestart), and the retry's first publish
	// carries no expectation anyway.
	t.Run("strict", func(t *testing.T) { outServerRestart(t, true, 2, 0) })
}

func outServerRestart(t *testing.T, strict bool, producers, conns int) {
	const n = 3000
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "R")
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Kind: ipc.MPSC, Producers: producers, Sequences: true, Capacity: 1 << 14})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "R.x", Window: 100, ReconnectWait: 20 * time.Millisecond,
		StrictOrder: strict, Conns: conns})
	require.NoError(t, err)
	want := 2
	if strict {
		want = 1
	}
	require.Equal(t, want, b.Stats().Conns)
	runOut(t, b)
	wrote := writeAll(t, r, producers, n)

	for round := 1; round <= 2; round++ {
		released := b.Stats().Released
		waitFor(t, "messages released before the shutdown", func() bool { return b.Stats().Released >= released+500 })
		srv.Shutdown()
		waitFor(t, "the bridge to see the server gone", func() bool { return b.Stats().Errors >= uint64(round) })
		waitFor(t, "the connections reported down", func() bool { return b.Stats().Connection != "CONNECTED" })
		require.NoError(t, srv.Restart())
		waitFor(t, "messages released after the restart", func() bool { return b.Stats().Released >= released+1000 })
	}
	require.NoError(t, <-wrote)
	total := uint64(producers) * n
	waitFor(t, "every message released", func() bool { return b.Stats().Released == total })
	checkProducers(t, readStream(t, js, "R", total), producers, n)
	st := b.Stats()
	t.Log(st, "; last error:", st.LastError)
	require.NotZero(t, st.Retries)
	require.GreaterOrEqual(t, st.Reconnects, uint64(2), "reconnections after two restarts")
	waitFor(t, "every connection connected", func() bool { return b.Stats().Connection == "CONNECTED" })
}

// NewOut fails fast, naming the cause and the fix.
func TestOutBadConfig(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "S")
	addStream(t, js, "T")
	ctx := context.Background()
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600))
	ca := writeCA(t)
	ring := func(tb testing.TB, cfg ipc.Config) *ipc.Ring {
		r, err := ipc.Create(testutil.Name(tb), cfg)
		require.NoError(tb, err)
		tb.Cleanup(func() { _ = r.Close() })
		return r
	}
	for _, tc := range []struct {
		name string
		ring func(testing.TB) *ipc.Ring
		cfg  bridge.OutConfig
		is   error
		says string
	}{
		{"unreachable URL", nil, bridge.OutConfig{URL: "nats://127.0.0.1:1", Subject: "S.x"},
			nats.ErrNoServers, "is a NATS server running there? check OutConfig.URL"},
		{"CA file missing", nil, bridge.OutConfig{Subject: "S.x", RootCA: "/nonexistent/ca.pem"},
			fs.ErrNotExist, "read the TLS CA file /nonexistent/ca.pem: open /nonexistent/ca.pem: no such file or directory: give OutConfig.RootCA a readable PEM file"},
		{"CA file not PEM", nil, bridge.OutConfig{Subject: "S.x", RootCA: notPEM},
			fs.ErrInvalid, "the TLS CA file " + notPEM + " holds no PEM certificate"},
		{"TLS wanted, server without", nil, bridge.OutConfig{Subject: "S.x", RootCA: ca},
			nats.ErrSecureConnWanted, "OutConfig.RootCA asks for TLS, but the server does not offer it: enable TLS on the server, or drop OutConfig.RootCA"},
		{"no subject", nil, bridge.OutConfig{}, fs.ErrInvalid, "set the literal subject"},
		{"wildcard subject", nil, bridge.OutConfig{Subject: "S.*"}, fs.ErrInvalid, "no wildcards"},
		{"missing stream", nil, bridge.OutConfig{Subject: "S.x", Stream: "NOPE"},
			jetstream.ErrStreamNotFound, "nats stream add NOPE --subjects S.x"},
		{"subject bound to no stream", nil, bridge.OutConfig{Subject: "elsewhere"},
			jetstream.ErrStreamNotFound, `no stream on nats://127.0.0.1:`},
		{"subject not in the named stream", nil, bridge.OutConfig{Subject: "T.x", Stream: "S"},
			fs.ErrInvalid, `subject "T.x" is captured by stream "T", not by OutConfig.Stream "S"`},
		{"ring with DropOldest", func(tb testing.TB) *ipc.Ring { return ring(tb, ipc.Config{DropOldest: true}) },
			bridge.OutConfig{Subject: "S.x"}, fs.ErrInvalid, "recreate the ring without DropOldest"},
		{"ring's consumer role held", func(tb testing.TB) *ipc.Ring {
			r := ring(tb, ipc.Config{})
			c, err := r.Consumer(nil)
			require.NoError(tb, err)
			tb.Cleanup(func() { _ = c.Close() })
			return r
		}, bridge.OutConfig{Subject: "S.x"}, ipc.ErrBusy, "its consumer role is held"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *ipc.Ring
			if tc.ring != nil {
				r = tc.ring(t)
			} else {
				r = ring(t, ipc.Config{})
			}
			if tc.cfg.URL == "" {
				tc.cfg.URL = srv.URL()
			}
			b, err := bridge.NewOut(ctx, r, tc.cfg)
			if b != nil {
				_ = b.Close()
			}
			require.ErrorIs(t, err, tc.is)
			require.ErrorContains(t, err, tc.says)
			if tc.is != nats.ErrNoServers {
				require.NotContains(t, err.Error(), "is a NATS server running there?")
			}
			t.Log(err)
			// Nothing held: a consumer can take the ring (unless the case
			// holds it).
			if !errors.Is(err, ipc.ErrBusy) {
				c, err := r.Consumer(nil)
				require.NoError(t, err)
				require.NoError(t, c.Close())
			}
		})
	}
	t.Run("subject in the named stream", func(t *testing.T) {
		b, err := bridge.NewOut(ctx, ring(t, ipc.Config{}), bridge.OutConfig{URL: srv.URL(), Subject: "T.x", Stream: "T"})
		require.NoError(t, err)
		require.Equal(t, "T", b.Stats().Stream)
		require.NotZero(t, b.Stats().DuplicateWindow, "the stream's duplicate window")
		require.NoError(t, b.Close())
	})
}

// A server refusing the credentials, and one without JetStream, are told
// apart from an unreachable one.
func TestOutBadServer(t *testing.T) {
	start := func(t *testing.T, opts *server.Options) string {
		opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
		srv, err := server.NewServer(opts)
		require.NoError(t, err)
		srv.Start()
		t.Cleanup(srv.Shutdown)
		require.True(t, srv.ReadyForConnections(deadline))
		return srv.ClientURL()
	}
	r, err := ipc.Create(testutil.Name(t), ipc.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	ctx := context.Background()
	t.Run("credentials refused", func(t *testing.T) {
		url := start(t, &server.Options{Username: "bridge", Password: "right"})
		_, err := bridge.NewOut(ctx, r, bridge.OutConfig{URL: url, User: "bridge", Password: "wrong", Subject: "S.x"})
		require.ErrorIs(t, err, nats.ErrAuthorization)
		require.ErrorContains(t, err, "check OutConfig.Creds, User and Password")
		t.Log(err)
	})
	t.Run("TLS certificate not trusted", func(t *testing.T) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		require.NoError(t, err)
		cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
		url := start(t, &server.Options{TLS: true, TLSConfig: cfg, TLSTimeout: 10})
		_, err = bridge.NewOut(ctx, r, bridge.OutConfig{URL: url, RootCA: writeCA(t), Subject: "S.x"})
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
		require.ErrorContains(t, err, "the TLS handshake failed, the server's certificate is not trusted")
		require.ErrorContains(t, err, "give OutConfig.RootCA the CA file that signed it")
		t.Log(err)
	})
	t.Run("no JetStream", func(t *testing.T) {
		url := start(t, &server.Options{})
		_, err := bridge.NewOut(ctx, r, bridge.OutConfig{URL: url, Subject: "S.x"})
		require.ErrorIs(t, err, nats.ErrNoResponders)
		require.ErrorContains(t, err, "start nats-server with -js")
		t.Log(err)
	})
}

// A stream that refuses (a DiscardNew limit reached): the bridge's window
// stops at what the stream took, the bridge retries and reads no further,
// the ring keeps the rest; once the stream takes more (its limit raised),
// every message lands once. The window bounds what is unacknowledged throughout.
func TestOutStreamRefuses(t *testing.T) {
	const n, limit, window = 300, 100, 32
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "F", Subjects: []string{"F.>"}, MaxMsgs: limit, Discard: jetstream.DiscardNew})
	require.NoError(t, err)
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Sequences: true, Capacity: 1 << 12})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "F.x", Window: window})
	require.NoError(t, err)
	runOut(t, b)

	// A sampler: the window is never exceeded.
	stopSampling := make(chan struct{})
	sampled := make(chan int)
	go func() {
		most := 0
		for {
			select {
			case <-stopSampling:
				sampled <- most
				return
			default:
				most = max(most, b.Stats().InFlight)
			}
		}
	}()
	wrote := writeAll(t, r, 1, n)
	waitFor(t, "the stream refusing", func() bool {
		st := b.Stats()
		return st.Errors > 0 && strings.Contains(st.LastError, "maximum messages")
	})
	st := b.Stats()
	require.EqualValues(t, limit, st.Released, "released: only what the stream took")
	rs, err := r.Stats()
	require.NoError(t, err)
	require.NotZero(t, rs.Depth, "the rest waits in the ring")

	_, err = js.UpdateStream(ctx, jetstream.StreamConfig{Name: "F", Subjects: []string{"F.>"}, MaxMsgs: -1, Discard: jetstream.DiscardNew})
	require.NoError(t, err)
	require.NoError(t, <-wrote)
	waitFor(t, "every message released", func() bool { return b.Stats().Released == n })
	close(stopSampling)
	require.LessOrEqual(t, <-sampled, window, "messages unacknowledged at once")

	// The purge may fall in the middle of a window's publishes, letting a
	// later one land before an earlier refused one (docs/bridge.md,
	// "The out direction", "The guarantee", 4): check each once, not
	// their order.
	msgs := readStream(t, js, "F", n)
	require.Len(t, msgs, n)
	seen := map[uint64]bool{}
	for _, m := range msgs {
		i := binary.BigEndian.Uint64(m.data[8:])
		require.True(t, i >= 1 && i <= n && !seen[i], "message %d", i)
		seen[i] = true
	}
	st = b.Stats()
	t.Log(st, "; last error:", st.LastError)
	require.NotZero(t, st.Retries)
}

// Run stopped by its context returns nil having released what was
// acknowledged; a new bridge on the ring publishes again only what was
// held (the stream discards those that had landed), and the stream ends
// with every message once, in order.
func TestOutStopResume(t *testing.T) {
	const n, window = 3000, 200
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "P")
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Sequences: true, Capacity: 1 << 14})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	cfg := bridge.OutConfig{URL: srv.URL(), Subject: "P.x", Window: window}
	wrote := writeAll(t, r, 1, n)

	b, err := bridge.NewOut(context.Background(), r, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	waitFor(t, "messages released", func() bool { return b.Stats().Released >= n/3 })
	cancel()
	require.NoError(t, <-done)
	st := b.Stats()
	require.Equal(t, "stopped", st.State)
	require.LessOrEqual(t, st.Acked-st.Released, uint64(window), "acknowledged and not released: only those behind one not acknowledged")
	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "Close again")
	require.ErrorIs(t, b.Run(context.Background()), ipc.ErrClosed)

	b2, err := bridge.NewOut(context.Background(), r, cfg)
	require.NoError(t, err)
	runOut(t, b2)
	require.NoError(t, <-wrote)
	waitFor(t, "every message released", func() bool { return st.Released+b2.Stats().Released == n })
	checkProducers(t, readStream(t, js, "P", n), 1, n)
	st2 := b2.Stats()
	t.Log("first: ", st, "; second: ", st2)
	require.LessOrEqual(t, st2.Duplicates, uint64(window), "re-published: only what the first held")
	require.Equal(t, uint64(n)-st.Released, st2.Released)
}

// The stream deleted ("no responders" to every publish) and created
// again while producers write: the bridge retries, holding everything not
// acknowledged, and the new stream receives every message published after
// the deletion, each once.
func TestOutStreamRecreated(t *testing.T) {
	const n = 2000
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "D")
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Kind: ipc.MPSC, Producers: 2, Sequences: true, Capacity: 1 << 14})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "D.x", Window: 64})
	require.NoError(t, err)
	runOut(t, b)

	// Producer 1's messages into the first stream, producer 2's into the
	// second.
	p1 := writeAll(t, r, 1, n)
	require.NoError(t, <-p1)
	waitFor(t, "the first producer's messages released", func() bool { return b.Stats().Released == n })
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, js.DeleteStream(ctx, "D"))
	done := make(chan error, 1)
	go func() {
		p2, err := r.Producer(&ipc.ProducerConfig{ID: 2, Wait: ipc.Wait{PeerTimeout: forever}})
		if err == nil {
			for i := uint64(1); i <= n && err == nil; i++ {
				err = p2.Write(context.Background(), prodMsg(2, i, 16+int(i%100)))
			}
			err = errors.Join(err, p2.Close())
		}
		done <- err
	}()
	waitFor(t, "the bridge to see the stream gone", func() bool { return b.Stats().Errors > 0 })
	addStream(t, js, "D")
	require.NoError(t, <-done)
	waitFor(t, "every message released", func() bool { return b.Stats().Released == 2*n })

	// The stream may have come back in the middle of a window's publishes,
	// letting later ones land before earlier refused ones (docs/bridge.md,
	// The guarantee, 4): check each once, not the order.
	msgs := readStream(t, js, "D", n)
	require.Len(t, msgs, n)
	seen := map[uint64]bool{}
	for _, m := range msgs {
		k, i := binary.BigEndian.Uint64(m.data), binary.BigEndian.Uint64(m.data[8:])
		require.True(t, k == 2 && i >= 1 && i <= n && !seen[i], "producer %d's message %d", k, i)
		seen[i] = true
	}
	st := b.Stats()
	t.Log(st, "; last error:", st.LastError)
	require.NotZero(t, st.Retries)
}

// writeCA writes a self-signed CA certificate, PEM, into a file of t's and
// returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shmring test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return file
}

// docID is the default OutConfig.ID as docs/bridge.md gives it: unpadded
// base64url of the first 8 bytes of the SHA-256 of "NAME:CREATED", the
// ring's name and its creation time in hexadecimal nanoseconds.
func docID(name string, created int64) string {
	sum := sha256.Sum256([]byte(name + ":" + strconv.FormatInt(created, 16)))
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// The default ID is 11 characters, the same for every bridge of a ring
// (a successor's Msg-Ids match its predecessor's), another for a ring
// recreated under the same name; an ID given is used as given, and one
// that cannot go in a header is refused.
func TestOutID(t *testing.T) {
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "O")
	name := testutil.Name(t)
	cfg := ipc.Config{Kind: ipc.MPSC, Producers: 2, Sequences: true, Capacity: 1 << 14}
	open := func(r *ipc.Ring, id string) (string, error) {
		b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "O.x", ID: id})
		if err != nil {
			return "", err
		}
		defer b.Close()
		return b.ID(), nil
	}
	r, err := ipc.Create(name, cfg)
	require.NoError(t, err)
	first, err := open(r, "")
	require.NoError(t, err)
	require.Len(t, first, 11)
	require.Equal(t, docID(name, ops.Header(r).CreatedNanos), first)
	require.Equal(t, "mvthGFNjp7E", docID("orders", 0x1873b3d1c05a2e40), "docs/bridge.md's example")
	again, err := open(r, "")
	require.NoError(t, err)
	require.Equal(t, first, again, "a successor bridge of the same ring")
	given, err := open(r, "orders:1")
	require.NoError(t, err)
	require.Equal(t, "orders:1", given)
	_, err = open(r, "a\r\nNats-Rollup: all")
	require.ErrorIs(t, err, fs.ErrInvalid)
	require.ErrorContains(t, err, "control character")
	_, err = open(r, " orders")
	require.ErrorIs(t, err, fs.ErrInvalid)
	require.ErrorContains(t, err, "white space")
	created := ops.Header(r).CreatedNanos
	require.NoError(t, r.Close())
	require.NoError(t, ipc.Remove(name))

	// The same name, created again (a later creation time).
	var r2 *ipc.Ring
	for {
		r2, err = ipc.Create(name, cfg)
		require.NoError(t, err)
		if ops.Header(r2).CreatedNanos != created {
			break
		}
		require.NoError(t, r2.Close()) // the same nanosecond: a coarse clock
		require.NoError(t, ipc.Remove(name))
	}
	t.Cleanup(func() { _ = r2.Close() })
	second, err := open(r2, "")
	require.NoError(t, err)
	require.NotEqual(t, first, second, "a recreated ring's ID")
}
