package bridge

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nats-io/nats.go"
)

// The out-bridge's connections (OutConfig.Conns). The server reads,
// parses and acknowledges each connection's messages on that connection's
// own goroutines, and the client side has a reader and a flusher per
// connection: one connection puts all of that per-message work on one
// chain of goroutines, several spread it (docs/bridge.md, "Connections").
// Each message goes out on the connection of its producer slot (slot %
// connections): one producer's messages on one connection, in ring order,
// which the server keeps. The first connection also carries the JetStream
// API requests (the stream's checks).

// defaultConnsMax is the most connections OutConfig.Conns defaults to: one
// per MPSC producer slot up to it (bench/cmd/bridgebench measured it:
// docs/bridge.md, "Connections").
const defaultConnsMax = 4

// outConn is one of the out-bridge's publishing connections.
type outConn struct {
	nc     *nats.Conn
	prefix string // its reply subjects' prefix: an inbox of its own and "."
}

// conns returns how many connections an out-bridge of cfg uses on a ring
// of slots producer slots (0: SPSC): StrictOrder one (its chain of
// expectations is stream-wide, one ordered series of publishes), else
// Conns or its default, one per slot up to defaultConnsMax, never more
// than one per slot (the rest would idle).
func outConns(cfg OutConfig, slots int) (int, error) {
	switch {
	case cfg.Conns < 0:
		return 0, fmt.Errorf("bridge: OutConfig.Conns %d: want a number of connections (0: the default, one per producer slot up to %d): %w",
			cfg.Conns, defaultConnsMax, fs.ErrInvalid)
	case cfg.StrictOrder && cfg.Conns > 1:
		return 0, fmt.Errorf("bridge: OutConfig.StrictOrder with Conns %d: strict order chains every publish to the one before it in ring order, "+
			"stream-wide, which needs one ordered series of publishes, on one connection: set Conns to 0 or 1, or turn StrictOrder off: %w", cfg.Conns, fs.ErrInvalid)
	case cfg.StrictOrder:
		return 1, nil
	}
	slots = max(slots, 1)
	n := cfg.Conns
	if n == 0 {
		n = defaultConnsMax
	}
	return min(n, slots), nil
}

// dialConns connects the out-bridge's connections (b.conns, its first
// also b.js), each with its reply subscription; on an error the caller
// closes those made (closeConns).
func (b *Out) dialConns(c conn, n int) error {
	name := c.name
	for i := range n {
		c.name = name
		if n > 1 {
			c.name = fmt.Sprintf("%s (connection %d of %d)", name, i+1, n)
		}
		c.extra = []nats.Option{
			// No reconnect buffer: a publish while disconnected fails at
			// once, so that nothing published after a lost one lands before
			// it is published again.
			nats.ReconnectBufSize(-1),
			nats.DisconnectErrHandler(b.onDisconnect),
			nats.ErrorHandler(b.onAsyncError),
		}
		nc, js, err := c.dial()
		if err != nil {
			return err
		}
		b.conns = append(b.conns, outConn{nc: nc})
		if i == 0 {
			b.js = js
		}
		if err := b.subscribeReplies(i); err != nil {
			return fmt.Errorf("bridge: subscribe to the acknowledgements' subjects on %s: %w", c.url, err)
		}
	}
	return nil
}

// closeConns closes the connections.
func (b *Out) closeConns() {
	for _, c := range b.conns {
		c.nc.Close()
	}
}

// api is the connection of the JetStream API requests and the server's
// limits: the first.
func (b *Out) api() *nats.Conn { return b.conns[0].nc }

// status is the connections' status as one: CONNECTED when every one is,
// else the first other status (a connection reconnecting makes the bridge
// wait, as one connection's loss fails the whole window).
func (b *Out) status() nats.Status {
	for _, c := range b.conns {
		if s := c.nc.Status(); s != nats.CONNECTED {
			return s
		}
	}
	return nats.CONNECTED
}

// connected reports whether every connection is connected.
func (b *Out) connected() bool {
	for _, c := range b.conns {
		if !c.nc.IsConnected() {
			return false
		}
	}
	return true
}

// reconnects is the connections' reconnections, together.
func (b *Out) reconnects() uint64 {
	var n uint64
	for _, c := range b.conns {
		n += c.nc.Stats().Reconnects
	}
	return n
}

// onAsyncError is the connections' asynchronous error callback (on
// nats.go's goroutine): a permissions violation, which the server reports
// only so (the refused publish or subscription itself has no answer, and
// would look like an acknowledgement timing out, retried forever), goes to
// Run; the rest shows as an error of its own where it matters (a slow
// reply subscription's lost acknowledgements time out).
func (b *Out) onAsyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		b.in.put(event{kind: evRefused, err: err})
	}
}

// permissionError is the error of a permissions violation the server
// reported (err, from onAsyncError), and whether it stops Run: a refusal of
// the bridge's publishes on Subject or of its reply subscriptions does
// (no retry cures it: the server's configuration must change); another
// (an API request) is counted and kept as the last error.
func (b *Out) permissionError(err error) (error, bool) {
	msg, url, subj := err.Error(), b.cfg.URL, b.cfg.Subject
	switch {
	case strings.Contains(msg, `Publish to "`+subj+`"`):
		return fmt.Errorf("bridge: the NATS server at %s refuses the bridge's publishes to %q (a permissions violation): allow the bridge's user "+
			"to publish to %q (nats-server authorization: the user's permissions, publish), or bridge to a subject it may publish to; "+
			"the messages not acknowledged stay in the ring: %w", url, subj, subj, err), true
	case strings.Contains(msg, `Subscription to "_INBOX.`):
		return fmt.Errorf("bridge: the NATS server at %s refuses the bridge's subscription to the stream's acknowledgements (a permissions violation): "+
			"allow the bridge's user to subscribe to _INBOX.> (nats-server authorization: the user's permissions, subscribe), where its publishes are answered; "+
			"the messages not acknowledged stay in the ring: %w", url, err), true
	}
	return fmt.Errorf("bridge: the NATS server at %s refuses an operation of the bridge's (a permissions violation): the bridge publishes to %q, "+
		"subscribes to _INBOX.> and requests $JS.API.>: allow those to its user: %w", url, subj, err), false
}
