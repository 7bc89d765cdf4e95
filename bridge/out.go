package bridge

import (
	"context"
	"errors"
	"time"

	"github.com/shmring/shmring/ipc"
)

// STUB: the out-bridge's API, fixed so that the CLI, metrics and benchmarks
// can be built beside it. The implementation replaces this file.

// OutConfig configures an out-bridge (ring → stream). Subject is required;
// every other zero value is a default.
type OutConfig struct {
	// URL, Creds, User, Password and RootCA are as in InConfig.
	URL      string
	Creds    string
	User     string
	Password string
	RootCA   string

	// Subject is the subject every message is published on.
	Subject string
	// Stream, if set, is the stream that must capture Subject (NewOut fails
	// naming both if it does not); "": the stream that captures Subject,
	// found by the server.
	Stream string
	// Window is the most publishes awaiting the stream's acknowledgement,
	// and so (with the ring's largest message) the bridge's memory. 0: 1024.
	Window int
	// ReconnectWait and Timeout are as in InConfig.
	ReconnectWait time.Duration
	Timeout       time.Duration
	// ID is the ring's identity in every message's Nats-Msg-Id. "": the
	// ring's name and creation time, so that a recreated ring's messages
	// are never taken for its predecessor's.
	ID string
}

// OutStats is a snapshot of an out-bridge's state.
type OutStats struct {
	Published  uint64 // publishes sent, re-publishes included
	Acked      uint64 // publishes the stream acknowledged
	Duplicates uint64 // acknowledgements the stream marked duplicate
	Released   uint64 // messages released from the ring (acknowledged in order)
	InFlight   int    // publishes sent and not yet acknowledged
	Window     int    // OutConfig.Window
	Errors     uint64
	LastError  string
	Retries    uint64 // times the window was re-published from the released position
	State      string // "idle", "reading", "full" (window full), "retrying", "stopped"
	Connection string
	Reconnects uint64
}

// Out is an out-bridge: the ring's consumer, publishing every message to a
// JetStream stream and releasing it from the ring once acknowledged.
type Out struct{}

var errStub = errors.New("bridge: the out-bridge is not built yet")

// NewOut connects, checks the stream and takes the ring's consumer role.
func NewOut(ctx context.Context, r *ipc.Ring, cfg OutConfig) (*Out, error) {
	return nil, errStub
}

// Run publishes until ctx is done or the ring fails.
func (b *Out) Run(ctx context.Context) error { return errStub }

// Stats returns the bridge's state.
func (b *Out) Stats() OutStats { return OutStats{} }

// Close releases the consumer role and the connection.
func (b *Out) Close() error { return nil }
