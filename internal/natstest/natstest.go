// Package natstest runs an embedded NATS server with JetStream for tests:
// package natsembed's server, with its store in the test's t.TempDir(), on
// a random port chosen at the first start and kept across restarts, so that
// clients with reconnection turned on find it again. A server restarted on
// the same store recovers its streams and durable consumers, as a real
// deployment's would after a crash or an upgrade.
//
// It imports nats-server, which is large: only tests, demos and the bridge's
// own tools import this package (or natsembed), never package bridge or ipc.
package natstest

import (
	"testing"

	"github.com/shmring/shmring/internal/natsembed"
)

// Server is an embedded NATS server with JetStream (natsembed.Server). Its
// methods are safe for concurrent use.
type Server = natsembed.Server

// New starts a server with JetStream whose store is in dir, on port (0: a
// random free one, which Restart then reuses). It returns once the server
// accepts connections.
func New(dir string, port int) (*Server, error) { return natsembed.New(dir, port) }

// Start is New for a test: its store in t.TempDir(), a random port, shut
// down when t ends, holding its streams directory (Server.HoldStreamsDir:
// a test may delete a file stream and create another at once). It fails t
// if the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New(t.TempDir(), 0)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(s.Shutdown)
	if err := s.HoldStreamsDir(); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	return s
}
