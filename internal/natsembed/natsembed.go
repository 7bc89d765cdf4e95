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
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long New waits for the server to accept
// connections: far above any working start, however loaded the machine.
const readyTimeout = 60 * time.Second

// Server is an embedded NATS server with JetStream. Its methods are safe
// for concurrent use.
type Server struct {
	dir string

	mu   sync.Mutex
	srv  *server.Server // nil while shut down
	port int            // chosen at the first start, reused by Restart
}

// New starts a server with JetStream whose store is in dir, on port (0: a
// random free one, which Restart then reuses). It returns once the server
// accepts connections, or at once with [ErrPort] if port is taken or no
// TCP port.
func New(dir string, port int) (*Server, error) {
	s := &Server{dir: dir, port: port}
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
