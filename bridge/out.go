package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// OutConfig configures an out-bridge (ring → stream). Subject is required;
// every other zero value is a default.
type OutConfig struct {
	// URL, Creds, User, Password and RootCA are as in InConfig.
	URL      string
	Creds    string
	User     string
	Password string
	RootCA   string

	// Subject is the subject every message is published on: a literal
	// subject (no wildcards) that a stream captures.
	Subject string
	// Stream, if set, is the stream that must capture Subject (NewOut fails
	// naming both if it does not); "": the stream that captures Subject,
	// found by the server.
	Stream string
	// Window is the most publishes awaiting the stream's acknowledgement,
	// and so (with the ring's largest message) the bridge's memory. 0: 1024.
	Window int
	// ReconnectWait and Timeout are as in InConfig. Timeout also bounds the
	// wait for each publish's acknowledgement: a publish not acknowledged
	// within it fails, and the window is published again.
	ReconnectWait time.Duration
	Timeout       time.Duration
	// ID is the ring's identity in every message's Nats-Msg-Id. "": 11
	// characters derived from the ring's name and creation time (Out.ID
	// tells them), so that a recreated ring's messages are never taken for
	// its predecessor's. Every bridge of the ring must use the same ID: a
	// successor with another republishes its window under new Msg-Ids,
	// which the stream cannot recognise as duplicates. Short is cheaper:
	// the server scans and stores the Msg-Id with every message
	// (docs/bridge.md, "Msg-Id length").
	ID string
	// Conns is how many connections the bridge publishes on: each MPSC
	// producer slot's messages go out on one of them (slot % Conns), in
	// ring order, so each producer's messages land in its order; several
	// producers' are spread over the connections, which the server
	// processes in parallel (docs/bridge.md, "Connections"). 0: one per
	// producer slot, up to 4; never more than the ring's slots (an SPSC
	// ring: 1). StrictOrder needs one connection: with it, 0 means 1 and
	// more is refused. Any failure, on any connection, publishes the whole
	// window again, as with one.
	Conns int
	// StrictOrder makes every message land in ring order (each MPSC
	// producer's in its own), even when the stream refuses one publish and
	// takes a later one already in flight (a DiscardNew limit freed in
	// between): each publish but the first after a start or a retry carries
	// the previous message's Msg-Id as Nats-Expected-Last-Msg-Id, so the
	// stream refuses every publish after a refused one, and the bridge
	// publishes again from it. It requires the bridge to be the only
	// writer of the stream: Run fails, naming the other writer's last
	// Msg-Id, when the stream's last message is not the bridge's. Off: a
	// refused message may land up to Window places late (docs/bridge.md,
	// "The out direction").
	StrictOrder bool
}

// OutStats is a snapshot of an out-bridge's state. Counters count since
// NewOut; each is read atomically, not all at one instant.
type OutStats struct {
	Published  uint64 // publishes sent, re-publishes included
	Acked      uint64 // publishes the stream acknowledged
	Duplicates uint64 // acknowledgements the stream marked duplicate
	Released   uint64 // messages released from the ring (acknowledged in order)
	InFlight   int    // messages read (held) and not yet acknowledged: at most Window
	Window     int    // OutConfig.Window
	Errors     uint64 // failures: a publish or acknowledgement failing (the first of each window published), a ring error
	LastError  string // the last of Errors ("" none)
	Retries    uint64 // times the window was re-published from the released position
	State      string // "idle", "reading", "full" (window full), "retrying", "stopped"
	Connection string // the NATS connections' status: "CONNECTED" when all are, else the first other ("RECONNECTING", ...)
	Reconnects uint64 // times the connections reconnected, together
	Conns      int    // the connections it publishes on (OutConfig.Conns, or its default)

	// Stream is the stream that captures the subject; DuplicateWindow its
	// duplicate window: an outage of the bridge longer than it may leave
	// duplicates in the stream (docs/bridge.md, "The out direction").
	Stream          string
	DuplicateWindow time.Duration
}

// Defaults of OutConfig.
const defaultWindow = 1024

// msgIDHeader is JetStream's de-duplication header; expLastIDHeader the
// order check of StrictOrder: the stream stores the message only if its
// last stored message has this Msg-Id.
const (
	msgIDHeader     = "Nats-Msg-Id"
	expLastIDHeader = "Nats-Expected-Last-Msg-Id"
)

// Out is an out-bridge: the ring's consumer, publishing every message to a
// JetStream stream and releasing it from the ring once acknowledged, in
// order. See the package documentation for the guarantee.
//
// Concurrency: Run is called by one goroutine at a time; Stats is safe for
// concurrent use, at any time; Close is called once Run has returned.
type Out struct {
	cfg    OutConfig
	r      *ipc.Ring
	ring   string    // the ring's path, for errors
	conns  []outConn // the publishing connections (out_conns.go); the first also the API's
	js     jetstream.JetStream
	cons   *ipc.Consumer
	seqs   bool   // the ring's records carry sequences: Msg-Id by slot and sequence
	stream string // the stream capturing Subject
	dups   time.Duration
	// maxMsgSize is the stream's MaxMsgSize at NewOut (-1 or 0: none).
	maxMsgSize int64

	// StrictOrder's detection of another writer (out_check.go), owned by
	// Run: stored counts this bridge's publishes the stream stored (not
	// duplicates); emptyAt is stored at the last refusal naming no last
	// Msg-Id (-1: none).
	stored  int64
	emptyAt int64

	// The window, owned by the goroutine in Run (out_window.go); epoch its
	// epoch, for the disconnection callback.
	w     window
	epoch atomic.Uint32

	// in carries the publishes' outcomes from the reply subscriptions, the
	// timer's ticks, disconnections and the server's refusals to Run
	// (out_ack.go); reconn a token at each reconnection, ending a retry's
	// pause. The acknowledgement timer: clock is its time's origin, armed
	// whether it runs (owned by Run).
	in inbox
	// rctx is the context of Run's reads of the ring (a child of Run's),
	// kept from read to read until an event cancels it (inbox.wake), so
	// that a read costs no allocation; rcancel points to its cancel
	// function, a cell never written again (an event's goroutine may call
	// it while Run makes the next context).
	rctx    context.Context
	rcancel *context.CancelFunc
	reconn  chan struct{}
	timer   *time.Timer
	clock   time.Time
	armed   bool

	stopStatus func()
	runGuard   // Run one at a time, not after Close; its state and failures
	st         outCounters
}

// NewOut connects to NATS, finds the stream that captures Subject and
// checks it, and takes the ring's consumer role holding its reads
// (ipc.ConsumerConfig.Hold), failing fast with an error that names the
// cause and the fix:
//
//   - no Subject, or one with wildcards, a negative Window, Conns,
//     ReconnectWait or Timeout, Conns above 1 with StrictOrder
//     (io/fs.ErrInvalid);
//   - no server at URL, or credentials refused (nats.ErrNoServers,
//     nats.ErrAuthorization); JetStream not enabled (nats.ErrNoResponders);
//     the user not permitted to subscribe to the replies' subjects
//     (nats.ErrPermissionViolation);
//   - Stream set and missing (jetstream.ErrStreamNotFound), or not
//     capturing Subject (io/fs.ErrInvalid), or Subject captured by no
//     stream (jetstream.ErrStreamNotFound);
//   - a ring created with DropOldest (io/fs.ErrInvalid: its producers
//     reclaim what the bridge still holds), a ring whose consumer role is
//     held (ipc.ErrBusy);
//   - a ring whose MaxMessage, with the bridge's headers, exceeds the
//     server's max_payload or the stream's MaxMsgSize (io/fs.ErrInvalid):
//     such a message could never be published.
//
// ctx bounds the checks. The ring stays the caller's: Close releases the
// consumer role, not the ring.
func NewOut(ctx context.Context, r *ipc.Ring, cfg OutConfig) (_ *Out, err error) {
	if cfg.Subject == "" || strings.ContainsAny(cfg.Subject, "*> \t") {
		return nil, fmt.Errorf("bridge: OutConfig.Subject %q: set the literal subject (no wildcards) to publish every message on: %w", cfg.Subject, fs.ErrInvalid)
	}
	if cfg.Window < 0 || cfg.ReconnectWait < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("bridge: OutConfig with a negative Window, ReconnectWait or Timeout: %w", fs.ErrInvalid)
	}
	if _, err := outConns(cfg, 0); err != nil {
		return nil, err
	}
	cfg.Window = or(cfg.Window, defaultWindow)
	cfg.ReconnectWait = or(cfg.ReconnectWait, defaultReconnectWait)
	cfg.Timeout = or(cfg.Timeout, defaultTimeout)
	if cfg.URL == "" {
		cfg.URL = nats.DefaultURL
	}
	if cfg.ID == "" {
		cfg.ID = ringID(r)
	} else if err := checkID(cfg.ID); err != nil {
		return nil, err
	}
	b := &Out{cfg: cfg, r: r, ring: r.Path(), reconn: make(chan struct{}, 1), emptyAt: -1}
	b.in.init(cfg.Window)

	rs, err := r.Stats()
	if err != nil {
		return nil, fmt.Errorf("bridge: ring %s: %w", b.ring, err)
	}
	if rs.DropOldest {
		return nil, fmt.Errorf("bridge: ring %s was created with DropOldest: its producers reclaim the oldest messages, which the out-bridge holds "+
			"until the stream acknowledges them; recreate the ring without DropOldest (the full ring's policy applies at its producers instead): %w",
			b.ring, fs.ErrInvalid)
	}
	b.seqs = rs.Sequences
	n, err := outConns(cfg, rs.Slots)
	if err != nil {
		return nil, err
	}
	b.cfg.Conns = n

	c := conn{
		cfg: "OutConfig", name: "shmring-bridge-out " + b.ring + " > " + cfg.Subject,
		url: cfg.URL, creds: cfg.Creds, user: cfg.User, pass: cfg.Password, rootCA: cfg.RootCA,
		reconnectWait: cfg.ReconnectWait,
		reconnected: func() {
			select {
			case b.reconn <- struct{}{}:
			default:
			}
		},
	}
	// The first connection's jetstream for the stream's checks; the
	// publishes are the bridge's own (out_ack.go).
	b.timer = time.AfterFunc(time.Hour, func() { b.in.put(event{kind: evTick}) })
	b.timer.Stop()
	b.clock = time.Now()
	defer func() {
		if err != nil {
			b.timer.Stop()
			b.closeConns()
		}
	}()
	if err := b.dialConns(c, n); err != nil {
		return nil, err
	}
	if err := b.bind(ctx); err != nil {
		// A permissions violation (the replies' subscription refused) is
		// the cause of the requests' timing out: say it. The round trip
		// makes sure the server's -ERR, sent before its PONG, was read.
		_ = b.api().FlushTimeout(cfg.Timeout)
		if le := b.api().LastError(); errors.Is(le, nats.ErrPermissionViolation) {
			perr, _ := b.permissionError(le)
			return nil, fmt.Errorf("%w (and so: %v)", perr, err)
		}
		return nil, err
	}
	if err := b.checkSize(ctx, rs.MaxMessage); err != nil {
		return nil, err
	}

	b.cons, err = r.Consumer(&ipc.ConsumerConfig{
		Hold: true,
		Wait: ipc.Wait{PeerTimeout: forever, Hook: b.waitHook},
	})
	if err != nil {
		if errors.Is(err, ipc.ErrBusy) {
			return nil, fmt.Errorf("bridge: ring %s: its consumer role is held, by another bridge or consumer: stop it; a ring has one consumer, "+
				"bridge a ring of its own: %w", b.ring, err)
		}
		return nil, fmt.Errorf("bridge: ring %s: %w", b.ring, err)
	}
	reply := make([]string, len(b.conns))
	for i, c := range b.conns {
		reply[i] = c.prefix
	}
	b.w.init(cfg.Window, cfg.Subject, reply, cfg.StrictOrder)
	b.epoch.Store(b.w.epoch)
	b.stopStatus = startStatus(r, statusOut, b.sample)
	return b, nil
}

// checkID refuses an OutConfig.ID that cannot go in a Nats-Msg-Id header
// as it is: a control character (a line break would end the header), or
// white space at either end (the server trims it from the value, and the
// stream's Msg-Ids would not start with the ID: StrictOrder would take the
// bridge's own messages for another writer's).
func checkID(id string) error {
	for _, c := range id {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("bridge: OutConfig.ID %q holds a control character (%U), which cannot go in a Nats-Msg-Id header: give an ID of printable characters (or none, for the default): %w", id, c, fs.ErrInvalid)
		}
	}
	if strings.TrimSpace(id) != id {
		return fmt.Errorf("bridge: OutConfig.ID %q begins or ends with white space, which the server trims from a Nats-Msg-Id: give an ID without it (or none, for the default): %w", id, fs.ErrInvalid)
	}
	return nil
}

// ID is the ring's identity in the bridge's Nats-Msg-Ids (OutConfig.ID,
// or its default).
func (b *Out) ID() string { return b.cfg.ID }

// ringID is the default OutConfig.ID: the first 8 bytes of the SHA-256 of
// longRingID's string, in unpadded base64url (11 characters). Every
// message carries it, and the server's per-message work grows with the
// header's length (docs/bridge.md, "Msg-Id length"); 64 bits tell apart
// any rings that will ever feed one stream.
func ringID(r *ipc.Ring) string {
	sum := sha256.Sum256([]byte(longRingID(r)))
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// longRingID is the ring's name (the last element of its path) and its
// creation time in hex nanoseconds, "name:hex": ringID's input, and the
// default ID before it (give it as OutConfig.ID to keep the Msg-Ids of a
// bridge of that time).
func longRingID(r *ipc.Ring) string {
	name := r.Path()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name + ":" + strconv.FormatInt(ops.Header(r).CreatedNanos, 16)
}

// bind finds the stream that captures Subject, checks it against Stream,
// and reads its duplicate window.
func (b *Out) bind(ctx context.Context) error {
	cfg := b.cfg
	tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var str jetstream.Stream // the stream, once read
	if cfg.Stream != "" {
		var err error
		str, err = b.js.Stream(tctx, cfg.Stream)
		switch {
		case err == nil:
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return fmt.Errorf("bridge: stream %q not found on %s: create it capturing %s (nats stream add %s --subjects %s), or fix OutConfig.Stream: %w",
				cfg.Stream, cfg.URL, cfg.Subject, cfg.Stream, cfg.Subject, err)
		default:
			return apiError(cfg.URL, fmt.Sprintf("stream %q", cfg.Stream), err)
		}
	}
	name, err := b.js.StreamNameBySubject(tctx, cfg.Subject)
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrStreamNotFound):
		fix := fmt.Sprintf("create a stream capturing it (nats stream add STREAM --subjects %s)", cfg.Subject)
		if cfg.Stream != "" {
			fix = fmt.Sprintf("add it to stream %q's subjects (nats stream edit %s --subjects ...), or fix OutConfig.Subject", cfg.Stream, cfg.Stream)
		}
		return fmt.Errorf("bridge: no stream on %s captures subject %q: the bridge would publish into nothing; %s: %w", cfg.URL, cfg.Subject, fix, err)
	default:
		return apiError(cfg.URL, fmt.Sprintf("the stream capturing %q", cfg.Subject), err)
	}
	if cfg.Stream != "" && name != cfg.Stream {
		return fmt.Errorf("bridge: subject %q is captured by stream %q, not by OutConfig.Stream %q: add the subject to %q's subjects (and remove it from %q's), "+
			"or fix OutConfig.Subject or Stream: %w", cfg.Subject, name, cfg.Stream, cfg.Stream, name, fs.ErrInvalid)
	}
	if str == nil { // found by its subject: read it
		if str, err = b.js.Stream(tctx, name); err != nil {
			return apiError(cfg.URL, fmt.Sprintf("stream %q", name), err)
		}
	}
	b.stream = name
	b.dups = str.CachedInfo().Config.Duplicates
	b.maxMsgSize = int64(str.CachedInfo().Config.MaxMsgSize)
	return nil
}

// waitHook ends the ring's wait for messages when publishes have an
// outcome to process (an acknowledgement may release what fills the ring)
// or Run's context is done.
func (b *Out) waitHook(ipc.WaitInfo) error {
	if b.in.pending.Load() || b.stopping.Load() {
		return errWake
	}
	return nil
}

// errWake ends a wait for messages in the ring: see waitHook.
var errWake = errors.New("bridge: publishes to process")

// Close releases the ring's consumer role (the messages not yet released
// stay in the ring, for the next consumer) and closes the NATS connections,
// then marks the ring's bridge block stopped (the ring must still be open
// for that; a closed one is left as it was).
// Call it after Run has returned; it fails if Run is running. Idempotent.
func (b *Out) Close() error {
	if ok, err := b.beginClose(); !ok {
		return err
	}
	err := b.cons.Close()
	b.timer.Stop()
	b.closeConns()
	b.stopStatus() // the last sample: stopped, the connection closed
	return err
}
