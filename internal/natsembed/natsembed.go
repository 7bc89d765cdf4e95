// Package natsembed runs an embedded NATS server with JetStream for demos,
// tests (through internal/natstest) and ringctl bridge --embedded: its
// store in a directory of the caller's, on a random port chosen at the
// first start (or a given one) and kept across restarts, so that clients
// with reconnection turned on find it again. A server restarted
// on the same store recovers its streams and durable consumers, as a real
// deployment's would after a crash or an upgrade.
//
// It imports nats-server, which is large: only tests, demos and the bridge's
// own tools (ringctl) import this package, never package bridge or ipc. It
// does not import package testing (internal/natstest adds Start for tests).
package natsembed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyTimeout bounds how long New waits for the server to accept
// connections: far above any working start, however loaded the machine.
const readyTimeout = 60 * time.Second

// Server is an embedded NATS server with JetStream. Its methods are safe
// for concurrent use.
type Server struct {
	dir string
	log *problems // the server's warnings and errors, kept across restarts

	mu   sync.Mutex
	srv  *server.Server // nil while shut down
	port int            // chosen at the first start, reused by Restart
}

// New starts a server with JetStream whose store is in dir, on port (0: a
// random free one, which Restart then reuses). It returns once the server
// accepts connections, or at once with [ErrPort] if port is taken or no
// TCP port.
func New(dir string, port int) (*Server, error) {
	s := &Server{dir: dir, port: port, log: &problems{}}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("natsembed: the server is running already")
	}
	port := s.port
	if port == 0 {
		port = server.RANDOM_PORT
	} else if err := probePort(port); err != nil {
		return err
	}
	opts := &server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   s.dir,
		NoLog:      true,
		NoSigs:     true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("natsembed: configure the server: %w", err)
	}
	// NoLog stops only the server's own console logger: this one keeps
	// the warnings and errors in memory, for Problems.
	srv.SetLogger(s.log, false, false)
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		return fmt.Errorf("natsembed: the server in %s did not accept connections within %v", s.dir, readyTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return fmt.Errorf("natsembed: the server in %s started without JetStream (see its store directory)", s.dir)
	}
	if addr, ok := srv.Addr().(*net.TCPAddr); ok {
		s.port = addr.Port
	}
	s.srv = srv
	return nil
}

// ErrPort is returned (wrapped) by New and Restart when the port asked for
// is in use or no port number at all: the server could not listen on it.
var ErrPort = errors.New("natsembed: port in use or invalid")

// probePort checks that the server can listen on port before it starts:
// nats-server, unable to listen, would log (nothing: NoLog) and never
// become ready, and New would wait readyTimeout for nothing.
func probePort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("%w: port %d is no TCP port (1 to 65535)", ErrPort, port)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%w: port %d is in use (or invalid): %v", ErrPort, port, err)
	}
	return l.Close()
}

// Problems returns the server's latest warnings and errors, oldest first
// (at most keepProblems, each prefixed "warning: ", "error: " or
// "fatal: "). The server's API answers some failures with a generic
// description ("error creating store for stream") and logs the cause: a
// caller adds these to its own error so that the cause is seen.
func (s *Server) Problems() []string { return s.log.list() }

// Explain returns err with the server's latest problems (at most the
// last three) appended, or err unchanged if the server logged none; nil
// stays nil. errors.Is and As still see err.
func (s *Server) Explain(err error) error {
	if err == nil {
		return nil
	}
	lines := s.Problems()
	if len(lines) == 0 {
		return err
	}
	lines = lines[max(0, len(lines)-3):]
	return fmt.Errorf("%w (the embedded server's latest log lines: %s)", err, strings.Join(lines, "; "))
}

// HoldStream is the name of the stream HoldStreamsDir creates, and
// HoldSubject its only subject.
const (
	HoldStream  = "NATSEMBED_HOLD"
	HoldSubject = "_natsembed.hold"
)

// HoldStreamsDir creates a file stream (HoldStream, on HoldSubject, which
// nothing publishes to) that lives as long as the store, so that the
// account's streams directory in the store is never empty. For code that
// deletes the account's last file stream and creates another at once (the
// tests that recreate a stream, bridgebench's cases):
// nats-server 2.15's stream delete removes the account's streams directory
// in a goroutine "if empty", racing with the next stream's creation, which
// then fails now and then with "error creating store for stream" (its log:
// "could not create storage directory ... no such file or directory").
// Idempotent, across restarts too.
func (s *Server) HoldStreamsDir() error {
	nc, err := nats.Connect(s.URL())
	if err != nil {
		return fmt.Errorf("natsembed: hold the streams directory: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("natsembed: hold the streams directory: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: HoldStream, Subjects: []string{HoldSubject}, Storage: jetstream.FileStorage})
	if err != nil {
		return fmt.Errorf("natsembed: hold the streams directory: %w", s.Explain(err))
	}
	return nil
}

// keepProblems bounds how many of the server's warnings and errors a
// Server keeps.
const keepProblems = 16

// problems is a server.Logger that keeps the latest keepProblems warnings
// and errors and drops notices, debug and trace lines.
type problems struct {
	mu    sync.Mutex
	lines []string
}

func (p *problems) add(kind, format string, v []any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == keepProblems {
		p.lines = append(p.lines[:0], p.lines[1:]...)
	}
	p.lines = append(p.lines, kind+fmt.Sprintf(format, v...))
}

func (p *problems) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func (p *problems) Noticef(string, ...any)         {}
func (p *problems) Debugf(string, ...any)          {}
func (p *problems) Tracef(string, ...any)          {}
func (p *problems) Warnf(format string, v ...any)  { p.add("warning: ", format, v) }
func (p *problems) Errorf(format string, v ...any) { p.add("error: ", format, v) }
func (p *problems) Fatalf(format string, v ...any) { p.add("fatal: ", format, v) }

// URL returns the server's client URL, the same across restarts.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
}

// Dir returns the directory of the server's store.
func (s *Server) Dir() string { return s.dir }

// Shutdown stops the server (clients see their connection drop) and waits
// until it has stopped. Idempotent.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts the server again on the same store and port after
// Shutdown (or shuts it down first if it runs): streams, messages and
// durable consumers are recovered from the store.
func (s *Server) Restart() error {
	s.Shutdown()
	return s.start()
}
