package bridge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/ipc"
)

// InConfig configures an in-bridge (stream → ring). Stream and Consumer are
// required; every other zero value is a default.
type InConfig struct {
	// URL is the NATS server URL, or several separated by commas. "":
	// nats://127.0.0.1:4222.
	URL string
	// Creds is a NATS credentials file (JWT and NKey seed). User and
	// Password authenticate with a user name instead. RootCA is a PEM file
	// of certificate authorities to verify the server's TLS certificate by.
	Creds    string
	User     string
	Password string
	RootCA   string

	// Stream is the JetStream stream to read.
	Stream string
	// Consumer is the name of a durable pull consumer of Stream, with
	// AckPolicy all (cheapest: one acknowledgement per burst of messages) or
	// explicit.
	// It holds the bridge's place in the stream on the server; use it for
	// this bridge only. If it does not exist, NewIn fails, unless
	// CreateConsumer is set.
	Consumer string
	// CreateConsumer makes NewIn create Consumer if it does not exist: a
	// durable pull consumer delivering the whole stream (or Subject), with
	// AckPolicy all (explicit on a work-queue stream, which requires it).
	CreateConsumer bool
	// Subject is the filter subject of a consumer NewIn creates; for an
	// existing consumer, if set, it must be the consumer's filter.
	Subject string

	// Batch is the most messages one fetch asks for, and so the most the
	// bridge holds in memory (in bytes, at most Batch times the stream's
	// largest message). 0: 256.
	Batch int
	// FetchWait is how long a fetch waits on the server for messages when
	// there are fewer than Batch. 0: 1 s.
	FetchWait time.Duration
	// ReconnectWait is how long the NATS connection waits between attempts
	// to reconnect; it retries forever. 0: 250 ms.
	ReconnectWait time.Duration
	// Timeout bounds each JetStream API request (stream and consumer
	// information, a direct read of a message). 0: 5 s.
	Timeout time.Duration

	// ProducerID is the producer ID the bridge takes the ring's producer
	// role with (ipc.ProducerConfig.ID, numbered from 1: ID n is slot n-1,
	// as ops and ringctl stat number slots): required, 1 to
	// Config.Producers, for an MPSC ring, so that a restarted bridge finds
	// its sequences in the same slot; 0 or 1 for an SPSC ring.
	ProducerID int
}

// Defaults of InConfig.
const (
	defaultBatch         = 256
	defaultFetchWait     = time.Second
	defaultReconnectWait = 250 * time.Millisecond
	defaultTimeout       = 5 * time.Second
)

// forever is the producer's peer timeout: the bridge waits for the ring's
// consumer to come back however long it is gone (a wait ends when Run's
// context is done, through the wait hook).
const forever = 100 * 365 * 24 * time.Hour

// errStopping ends a producer's wait for room when Run's context is done:
// a hook's own error, so the ring does not count the message as dropped.
var errStopping = errors.New("bridge: stopping")

// In is an in-bridge: it reads a JetStream stream through a durable pull
// consumer and writes each message into a ring as the ring's producer, in
// stream order, with the stream sequence as the message's sequence. See the
// package documentation for the guarantee.
//
// Concurrency: Run is called by one goroutine at a time; Stats is safe for
// concurrent use, at any time; Close is called once Run has returned.
type In struct {
	cfg  InConfig
	r    *ipc.Ring
	ring string // the ring's path, for errors
	nc   *nats.Conn
	js   jetstream.JetStream
	str  jetstream.Stream
	cons jetstream.Consumer
	prod *ipc.Producer

	ackAll  bool     // the consumer's AckPolicy is all: one ack per batch
	filters []string // the consumer's filter subjects (none: the whole stream)

	// Run's state, owned by the goroutine in Run.
	high        uint64    // every message of the consumer with a stream sequence <= high is in the ring
	lastCons    uint64    // the consumer (delivery) sequence of the last delivery received
	needSync    bool      // high and lastCons must be re-established before fetching
	created     time.Time // the stream's creation time, as NewIn found it
	consCreated time.Time // the consumer's, as the last resync found it: another, and resync checks the stream

	runGuard                // Run one at a time, not after Close; its state and failures
	reconnected atomic.Bool // set by the connection on reconnecting: Run resyncs
	refusal     refusal     // a permissions violation that stops Run (in_errors.go)
	noReset     atomic.Bool // the server refuses consumer resets: resync makes none
	st          counters
	stopStatus  func() // ends the bridge block's sampling (status.go)
}

// NewIn connects to NATS, checks the stream, the durable consumer and the
// ring, and takes the ring's producer role (ProducerID's slot), failing fast
// with an error that names the cause and the fix:
//
//   - no server at URL, or credentials refused (nats.ErrNoServers,
//     nats.ErrAuthorization); the user not permitted to make the
//     JetStream API requests or to subscribe to their replies' subjects
//     (nats.ErrPermissionViolation, naming the subject);
//   - JetStream not enabled (jetstream.ErrJetStreamNotEnabled, or
//     nats.ErrNoResponders: nothing answers), no such stream
//     (jetstream.ErrStreamNotFound);
//   - no such consumer (jetstream.ErrConsumerNotFound) unless
//     CreateConsumer, a push consumer, one that does not acknowledge, or
//     one whose filter is not Subject;
//   - a ring created without sequences, or an MPSC ring without a
//     ProducerID (io/fs.ErrInvalid), a ring whose producer role is held
//     (ipc.ErrBusy);
//   - a ring holding sequences beyond the stream's last (the stream was
//     recreated: its sequences started again).
//
// ctx bounds the checks. The ring stays the caller's: Close releases the
// producer role, not the ring.
func NewIn(ctx context.Context, r *ipc.Ring, cfg InConfig) (_ *In, err error) {
	if cfg.Stream == "" || cfg.Consumer == "" {
		return nil, fmt.Errorf("bridge: InConfig needs Stream and Consumer (the durable pull consumer to read with): %w", fs.ErrInvalid)
	}
	if cfg.Batch < 0 || cfg.FetchWait < 0 || cfg.ReconnectWait < 0 || cfg.Timeout < 0 || cfg.ProducerID < 0 {
		return nil, fmt.Errorf("bridge: InConfig with a negative Batch, FetchWait, ReconnectWait, Timeout or ProducerID: %w", fs.ErrInvalid)
	}
	cfg.Batch = or(cfg.Batch, defaultBatch)
	cfg.FetchWait = or(cfg.FetchWait, defaultFetchWait)
	cfg.ReconnectWait = or(cfg.ReconnectWait, defaultReconnectWait)
	cfg.Timeout = or(cfg.Timeout, defaultTimeout)
	if cfg.URL == "" {
		cfg.URL = nats.DefaultURL
	}
	b := &In{cfg: cfg, r: r, ring: r.Path(), needSync: true}

	rs, err := r.Stats()
	if err != nil {
		return nil, fmt.Errorf("bridge: ring %s: %w", b.ring, err)
	}
	if !rs.Sequences {
		return nil, fmt.Errorf("bridge: ring %s was created without sequences: the in-bridge writes each message with its stream sequence, "+
			"so that the ring discards a redelivery; recreate the ring with ipc.Config{Sequences: true}: %w", b.ring, fs.ErrInvalid)
	}
	if rs.Kind == ipc.MPSC && cfg.ProducerID == 0 {
		return nil, fmt.Errorf("bridge: ring %s is MPSC: set InConfig.ProducerID to a fixed producer ID (1 to %d; ID n is slot n-1), so that a restarted bridge finds its sequences in it: %w",
			b.ring, rs.Slots, fs.ErrInvalid)
	}

	if err := b.connect(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.nc.Close()
		}
	}()
	if err := b.bind(ctx); err != nil {
		// A permissions violation (a request, or the replies'
		// subscription, refused) is the cause of the requests' failing:
		// say it.
		if perr := b.newInPermissionError(err); perr != nil {
			return nil, perr
		}
		return nil, err
	}

	b.prod, err = r.Producer(&ipc.ProducerConfig{
		ID:   cfg.ProducerID,
		Wait: ipc.Wait{PeerTimeout: forever, Hook: b.waitHook},
	})
	if err != nil {
		if errors.Is(err, ipc.ErrBusy) {
			role := "producer role"
			if rs.Kind == ipc.MPSC {
				role = fmt.Sprintf("producer ID %d (slot %d)", cfg.ProducerID, cfg.ProducerID-1)
			}
			return nil, fmt.Errorf("bridge: ring %s: its %s is held, by another bridge or producer: stop it, or give this bridge a ring (or slot) of its own: %w",
				b.ring, role, err)
		}
		return nil, fmt.Errorf("bridge: ring %s: %w", b.ring, err)
	}
	// Every message the predecessor wrote below from is in the ring; those
	// from from on it may have died writing, and are written again (the
	// ring's consumer discards the ones that landed).
	from, _ := b.prod.InDoubt()
	b.high = from - 1
	if last := b.str.CachedInfo().State.LastSeq; b.high > last {
		_ = b.prod.Close()
		return nil, fmt.Errorf("bridge: ring %s holds stream sequences up to %d but stream %q ends at %d: the stream was recreated "+
			"(its sequences started again); recreate the ring, or bridge the new stream into a new ring: %w", b.ring, b.high, cfg.Stream, last, fs.ErrInvalid)
	}
	b.created, b.consCreated = b.str.CachedInfo().Created, b.cons.CachedInfo().Created
	b.st.high.Store(b.high)
	b.stopStatus = startStatus(r, statusIn, b.statusSample)
	return b, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// connect dials NATS (conn.dial), reconnecting forever once connected.
func (b *In) connect() error {
	c := conn{
		cfg: "InConfig", name: "shmring-bridge-in " + b.cfg.Stream + "/" + b.cfg.Consumer,
		url: b.cfg.URL, creds: b.cfg.Creds, user: b.cfg.User, pass: b.cfg.Password, rootCA: b.cfg.RootCA,
		reconnectWait: b.cfg.ReconnectWait,
		reconnected:   func() { b.reconnected.Store(true) },
		extra:         []nats.Option{nats.ErrorHandler(b.onAsyncError)},
	}
	var err error
	b.nc, b.js, err = c.dial()
	return err
}

// bind finds the stream and the durable consumer (or creates it) and checks
// that the bridge can use it.
func (b *In) bind(ctx context.Context) error {
	cfg := b.cfg
	tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var err error
	b.str, err = b.js.Stream(tctx, cfg.Stream)
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("bridge: stream %q not found on %s: create it (nats stream add %s --subjects SUBJECTS), or fix InConfig.Stream: %w",
			cfg.Stream, cfg.URL, cfg.Stream, err)
	default:
		return apiError(cfg.URL, fmt.Sprintf("stream %q", cfg.Stream), err)
	}
	b.cons, err = b.js.Consumer(tctx, cfg.Stream, cfg.Consumer)
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrConsumerNotFound) && cfg.CreateConsumer:
		if subs := b.str.CachedInfo().Config.Subjects; cfg.Subject != "" && len(subs) > 0 && !subjectsOverlap(cfg.Subject, subs) {
			return fmt.Errorf("bridge: stream %q captures %s, never %q: a consumer filtering it would get nothing; fix InConfig.Subject (or the stream's subjects): %w",
				cfg.Stream, strings.Join(subs, ","), cfg.Subject, fs.ErrInvalid)
		}
		ack := jetstream.AckAllPolicy
		if b.str.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy {
			ack = jetstream.AckExplicitPolicy
		}
		b.cons, err = b.js.CreateConsumer(tctx, cfg.Stream, jetstream.ConsumerConfig{
			Durable:       cfg.Consumer,
			Description:   "shmring in-bridge into " + b.ring,
			AckPolicy:     ack,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			FilterSubject: cfg.Subject,
		})
		if err != nil {
			return fmt.Errorf("bridge: create durable consumer %q on stream %q: %w", cfg.Consumer, cfg.Stream, err)
		}
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("bridge: durable consumer %q not found on stream %q: create it as a pull consumer acknowledging all or explicit "+
			"(nats consumer add %s %s --pull --ack all), or set InConfig.CreateConsumer: %w", cfg.Consumer, cfg.Stream, cfg.Stream, cfg.Consumer, err)
	case errors.Is(err, jetstream.ErrNotPullConsumer):
		return fmt.Errorf("bridge: consumer %q of stream %q is a push consumer: the bridge fetches, give it a pull consumer (no deliver subject): %w",
			cfg.Consumer, cfg.Stream, err)
	default:
		return fmt.Errorf("bridge: consumer %q of stream %q: %w", cfg.Consumer, cfg.Stream, err)
	}
	cc := b.cons.CachedInfo().Config
	if cc.Durable == "" {
		return fmt.Errorf("bridge: consumer %q of stream %q is not durable: the server would forget the bridge's place; use a durable pull consumer: %w",
			cfg.Consumer, cfg.Stream, fs.ErrInvalid)
	}
	switch cc.AckPolicy {
	case jetstream.AckAllPolicy:
		b.ackAll = true
	case jetstream.AckExplicitPolicy:
	default:
		return fmt.Errorf("bridge: consumer %q of stream %q acknowledges nothing (AckPolicy %s): the bridge acknowledges a message once the ring holds it; "+
			"use AckPolicy all (one acknowledgement per batch) or explicit: %w", cfg.Consumer, cfg.Stream, cc.AckPolicy, fs.ErrInvalid)
	}
	b.filters = cc.FilterSubjects
	if cc.FilterSubject != "" {
		b.filters = []string{cc.FilterSubject}
	}
	if cfg.Subject != "" && (len(b.filters) != 1 || b.filters[0] != cfg.Subject) {
		return fmt.Errorf("bridge: consumer %q of stream %q filters %q, not %q: fix InConfig.Subject, or use another consumer: %w",
			cfg.Consumer, cfg.Stream, strings.Join(b.filters, ","), cfg.Subject, fs.ErrInvalid)
	}
	return nil
}

// waitHook ends a producer's wait for room once Run's context is done.
func (b *In) waitHook(ipc.WaitInfo) error {
	if b.stopping.Load() {
		return errStopping
	}
	return nil
}

// Close releases the ring's producer role and closes the NATS connection
// (acknowledgements not yet sent are flushed first, if it is connected),
// then marks the ring's bridge block stopped (the ring must still be open
// for that; a closed one is left as it was).
// Call it after Run has returned; it fails if Run is running. Idempotent.
func (b *In) Close() error {
	if ok, err := b.beginClose(); !ok {
		return err
	}
	err := b.prod.Close()
	if b.nc.IsConnected() {
		_ = b.nc.FlushTimeout(b.cfg.Timeout) // a lost acknowledgement is only a redelivery, which is skipped
	}
	b.nc.Close()
	b.stopStatus() // the last sample: stopped, the connection closed
	return err
}

// counters are In's Stats, updated by Run and read by anyone.
type counters struct {
	fetched, written, dups, acked, recovered atomic.Uint64
	resyncs, gaps, pauses, checks            atomic.Uint64
	resets                                   atomic.Uint64
	high                                     atomic.Uint64
	paused                                   atomic.Bool
}

// subjectsOverlap reports whether some subject could match both filter and
// one of subjects (NATS subjects: "."-separated tokens, "*" one token, ">"
// the rest).
func subjectsOverlap(filter string, subjects []string) bool {
	f := strings.Split(filter, ".")
	for _, s := range subjects {
		if tokensOverlap(f, strings.Split(s, ".")) {
			return true
		}
	}
	return false
}

func tokensOverlap(a, b []string) bool {
	for i := 0; ; i++ {
		switch {
		case i == len(a) || i == len(b):
			return len(a) == len(b)
		case a[i] == ">" || b[i] == ">":
			return true
		case a[i] != "*" && b[i] != "*" && a[i] != b[i]:
			return false
		}
	}
}
