package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natsembed"
	"github.com/shmring/shmring/ipc"
)

// natsFlags are the NATS connection flags of bridge out and in.
type natsFlags struct {
	url, creds, user, password, tlsca string
	embedded                          string
	quiet                             bool
}

func (n *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.url, "nats", "", "NATS server URL(s), comma-separated (default $NATS_URL, else nats://127.0.0.1:4222); with --embedded, the local address to serve on")
	fs.StringVar(&n.creds, "creds", "", "NATS credentials `FILE` (JWT and NKey seed)")
	fs.StringVar(&n.user, "user", "", "NATS user name")
	fs.StringVar(&n.password, "password", "", "NATS password (with --user)")
	fs.StringVar(&n.tlsca, "tlsca", "", "PEM `FILE` of certificate authorities to verify the server's TLS certificate by")
	fs.StringVar(&n.embedded, "embedded", "", "start an in-process JetStream server with its store in `DIR` (for trying on one machine; it stops with the bridge) and create the stream if missing")
	fs.BoolVar(&n.quiet, "quiet", false, "print no status line (default: one a second on stdout)")
}

// resolve returns the URL to connect to, starting the embedded server if
// asked (then stop shuts it down; else stop does nothing). prepare creates
// what the bridge needs on the embedded server (its stream).
// check refuses flags that would be ignored.
func (n *natsFlags) check() error {
	if n.password != "" && n.user == "" {
		return usagef("--password without --user: give the user name too (or use --creds FILE)")
	}
	return nil
}

func (n *natsFlags) resolve(sio stdio, prepare func(jetstream.JetStream) error) (addr string, stop func(), err error) {
	stop = func() {}
	if n.embedded == "" {
		addr = n.url
		if addr == "" {
			addr = os.Getenv("NATS_URL")
		}
		return addr, stop, nil
	}
	port := 0
	if n.url != "" {
		u, err := url.Parse(n.url)
		host := ""
		if err == nil {
			host = u.Hostname()
			port, err = strconv.Atoi(u.Port())
		}
		if err != nil || port <= 0 || (host != "127.0.0.1" && host != "localhost") {
			return "", stop, usagef("--nats %q with --embedded: want the local address to serve on, nats://127.0.0.1:PORT", n.url)
		}
	}
	if err := os.MkdirAll(n.embedded, 0o700); err != nil {
		return "", stop, fmt.Errorf("--embedded %s: %w", n.embedded, err)
	}
	srv, err := natsembed.New(n.embedded, port)
	if errors.Is(err, natsembed.ErrPort) {
		return "", stop, fmt.Errorf("--embedded: port %d is in use (or invalid): choose another --nats port, or leave --nats out for a random one", port)
	}
	if err != nil {
		return "", stop, err
	}
	addr = srv.URL()
	fmt.Fprintf(sio.err, "embedded JetStream server at %s (store %s)\n", addr, n.embedded)
	if err := withJetStream(addr, prepare); err != nil {
		srv.Shutdown()
		return "", stop, srv.Explain(err)
	}
	return addr, srv.Shutdown, nil
}

// withJetStream runs f with a JetStream client of the server at addr.
func withJetStream(addr string, f func(jetstream.JetStream) error) error {
	nc, err := nats.Connect(addr)
	if err != nil {
		return fmt.Errorf("embedded server at %s: %w", addr, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return f(js)
}

// ensureStream creates stream name capturing subjects unless it exists.
func ensureStream(js jetstream.JetStream, name string, subjects ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, name); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %q on the embedded server: %w", name, err)
	}
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage})
	if err != nil {
		return fmt.Errorf("create stream %q (subjects %v) on the embedded server: %w", name, subjects, err)
	}
	return nil
}

// runBridgeLoop runs run until SIGINT or SIGTERM, printing status() every
// second (unless quiet) and once more at the end; a clean stop is nil.
func runBridgeLoop(sio stdio, quiet bool, run func(context.Context) error, status func() string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			if !quiet {
				fmt.Fprintln(sio.out, status())
			}
			if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil // stopped by a signal: a clean stop
			}
			if err == nil {
				return nil
			}
			return err
		case <-t.C:
			if !quiet {
				fmt.Fprintln(sio.out, status())
			}
		}
	}
}

func bridgeOut(sio stdio, args []string) error {
	fs := newFlags(sio, "bridge")
	var loc location
	loc.register(fs)
	var nf natsFlags
	nf.register(fs)
	subject := fs.String("subject", "", "the subject every message is published on (required)")
	stream := fs.String("stream", "", "the stream that must capture --subject (default: whichever does; with --embedded, created if missing, default name SHMRING)")
	window := fs.Int("window", 0, "the most publishes awaiting the stream's acknowledgement: the bridge's memory (default 1024)")
	conns := fs.Int("conns", 0, "the NATS connections to publish on, each producer slot's messages on one (default: one per slot, up to 4; 1 with --strict-order)")
	strict := fs.Bool("strict-order", false, "keep ring order even when the stream refuses a publish and takes a later one (the bridge must be the stream's only writer)")
	id := fs.String("id", "", "the ring's identity in every message's Nats-Msg-Id, the same for every bridge of the ring (default: 11 characters from its name and creation time)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if err := nf.check(); err != nil {
		return err
	}
	switch {
	case *subject == "":
		return usagef("bridge out needs --subject SUBJ: the subject every message of the ring is published on")
	case *window < 0:
		return usagef("--window %d: want a positive number of publishes (0: the default, 1024)", *window)
	case *conns < 0:
		return usagef("--conns %d: want a positive number of connections (0: the default, one per producer slot up to 4)", *conns)
	case *conns > 1 && *strict:
		return usagef("--conns %d with --strict-order: strict order publishes on one connection (its chain of expectations is stream-wide); drop one of them", *conns)
	}
	r, err := ipc.Open(pos[0], loc.options()...)
	if err != nil {
		return err
	}
	defer r.Close()
	name := *stream
	if name == "" {
		name = "SHMRING"
	}
	addr, stopServer, err := nf.resolve(sio, func(js jetstream.JetStream) error { return ensureStream(js, name, *subject) })
	if err != nil {
		return err
	}
	defer stopServer()
	b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{
		URL: addr, Creds: nf.creds, User: nf.user, Password: nf.password, RootCA: nf.tlsca,
		Subject: *subject, Stream: *stream, Window: *window, Conns: *conns, StrictOrder: *strict, ID: *id,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(sio.err, "bridging ring %s out to subject %q on %s (connections: %d; Msg-Id prefix %s:); SIGINT or SIGTERM stops\n", show(r.Path()), *subject, orDefault(addr), b.Stats().Conns, b.ID())
	err = runBridgeLoop(sio, nf.quiet, b.Run, func() string { return outStatusLine(b.Stats()) })
	return errors.Join(err, b.Close())
}

func outStatusLine(s bridge.OutStats) string {
	line := fmt.Sprintf("state=%s conn=%s in_flight=%d/%d published=%d acked=%d released=%d dups=%d retries=%d errors=%d reconnects=%d",
		s.State, s.Connection, s.InFlight, s.Window, s.Published, s.Acked, s.Released, s.Duplicates, s.Retries, s.Errors, s.Reconnects)
	if s.LastError != "" {
		line += fmt.Sprintf(" last_error=%q", s.LastError)
	}
	return line
}

func bridgeIn(sio stdio, args []string) error {
	fs := newFlags(sio, "bridge")
	var loc location
	loc.register(fs)
	var nf natsFlags
	nf.register(fs)
	stream := fs.String("stream", "", "the stream to read (required; with --embedded, created if missing, capturing --subject or STREAM.>)")
	consumer := fs.String("consumer", "", "the durable pull consumer of --stream to read with, this bridge's alone (required)")
	subject := fs.String("subject", "", "the filter subject of a consumer --create-consumer creates; checked against an existing one")
	create := fs.Bool("create-consumer", false, "create --consumer if it does not exist (a durable pull consumer of the whole stream, or --subject)")
	producerID := fs.Int("producer-id", 0, "the producer ID to write as, numbered from 1 (1 to the ring's producers): ID N is slot N-1 in ringctl stat and send --id (required, and always the same, for an MPSC ring)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if err := nf.check(); err != nil {
		return err
	}
	switch {
	case *stream == "" || *consumer == "":
		return usagef("bridge in needs --stream STREAM and --consumer DURABLE: the stream to read and the durable pull consumer to read it with")
	case *producerID < 0:
		return usagef("--producer-id %d: want a producer ID, 1 to the ring's producers (ID N is slot N-1 in `ringctl stat`)", *producerID)
	}
	r, err := ipc.Open(pos[0], loc.options()...)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := checkProducerID(r, *producerID); err != nil {
		return err
	}
	subjects := []string{*stream + ".>"}
	if *subject != "" {
		subjects = []string{*subject}
	}
	addr, stopServer, err := nf.resolve(sio, func(js jetstream.JetStream) error { return ensureStream(js, *stream, subjects...) })
	if err != nil {
		return err
	}
	defer stopServer()
	b, err := bridge.NewIn(context.Background(), r, bridge.InConfig{
		URL: addr, Creds: nf.creds, User: nf.user, Password: nf.password, RootCA: nf.tlsca,
		Stream: *stream, Consumer: *consumer, CreateConsumer: *create, Subject: *subject, ProducerID: *producerID,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(sio.err, "bridging stream %q (consumer %q) on %s in to ring %s as %s; SIGINT or SIGTERM stops\n",
		*stream, *consumer, orDefault(addr), show(r.Path()), producerName(*producerID))
	err = runBridgeLoop(sio, nf.quiet, b.Run, func() string { return inStatusLine(b.Stats()) })
	return errors.Join(err, b.Close())
}

// inStatusLine is bridge in's status line: InStats' counters, and the last
// error once there was one (as bridge out's line), in ringctl's words.
func inStatusLine(s bridge.InStats) string {
	line := s.String()
	if s.LastError != "" {
		line += fmt.Sprintf(" last_error=%q", cliWording(s.LastError))
	}
	return line
}

// producerName names bridge in's producer in both numberings: --producer-id
// (ipc's ID, from 1) and the slot ringctl stat shows (from 0).
func producerName(id int) string {
	if id == 0 {
		id = 1 // an SPSC ring's one producer
	}
	return fmt.Sprintf("producer %d (slot %d in ringctl stat)", id, id-1)
}

// checkProducerID refuses a --producer-id the ring has no slot for, in
// both numberings (the bridge's own error would give only the ID's).
func checkProducerID(r *ipc.Ring, id int) error {
	st, err := r.Stats()
	if err != nil {
		return err
	}
	switch {
	case st.Kind == ipc.SPSC && id > 1:
		return fmt.Errorf("--producer-id %d: %s is an spsc ring: its one producer is 1 (slot 0 in ringctl stat); give 1 or leave --producer-id out", id, show(r.Path()))
	case st.Kind == ipc.MPSC && id > st.Slots:
		return fmt.Errorf("--producer-id %d: %s has producers 1 to %d (slots 0 to %d in ringctl stat)", id, show(r.Path()), st.Slots, st.Slots-1)
	}
	return nil
}

// orDefault names the URL a bridge uses for "".
func orDefault(addr string) string {
	if addr == "" {
		return nats.DefaultURL
	}
	return addr
}
