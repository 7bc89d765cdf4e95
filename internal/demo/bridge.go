package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natsembed"
	"github.com/shmring/shmring/ipc"
)

// BridgeConfig configures [Bridge].
type BridgeConfig struct {
	Producers int    // producer processes (at least 1)
	Messages  uint64 // per producer
	Size      uint64 // message size, at least 8 bytes
	Capacity  uint64 // each ring's capacity
	Window    int    // the out-bridge's window (0: its default)
	Batch     int    // the in-bridge's fetch batch (0: its default)
	// Dir is where the two rings are created ("": $SHMRING_DIR or
	// /dev/shm), named Name+"-out" (the producers') and Name+"-in" (the
	// consumer's); Name "": "ringctl-bridge-demo-" and the process ID.
	Dir, Name string
	// Store is an empty directory for the server's store, which the caller
	// removes; "": a temporary directory, removed at the end.
	Store string
}

// BridgeResult is what [Bridge] measured and the counters at the end.
type BridgeResult struct {
	Elapsed  time.Duration // first producer's first write to the consumer's last read
	CPU      time.Duration // the child processes' user+system time (the bridges and the server are not in it)
	Verified uint64        // messages the consumer read, every producer's in order
	Out      bridge.OutStats
	In       bridge.InStats
	// RingOut is the producers' ring (read by the out-bridge), RingIn the
	// consumer's (written by the in-bridge).
	RingOut, RingIn ipc.Stats
	StreamMsgs      uint64 // messages in the stream at the end
	Store           string // the server's store directory (removed unless BridgeConfig.Store)
	RingOutPath     string // (removed)
	RingInPath      string // (removed)
}

// The demo's stream, subject and durable consumer.
const (
	bridgeStream   = "DEMO"
	bridgeSubject  = "demo.messages"
	bridgeConsumer = "demo-in"
)

// Bridge runs the bridge demo: cfg.Producers producer processes (exe
// re-executed, as [Group] does) write numbered messages into an MPSC ring;
// an out-bridge (in this process) publishes them to a stream of an
// embedded JetStream server (its store in a temporary directory, removed
// afterwards); an in-bridge (in this process) fetches them into a second
// ring; a consumer process reads that ring and checks that every
// producer's messages arrive once each and in order. It removes the rings
// and the store, and returns the times and every counter.
func Bridge(exe string, cfg BridgeConfig) (res BridgeResult, err error) {
	if cfg.Size < 8 || cfg.Producers < 1 || cfg.Messages == 0 {
		return res, fmt.Errorf("demo: the bridge demo needs at least 1 producer, 1 message and 8-byte messages (the sequence number)")
	}
	store := cfg.Store
	if store == "" {
		if store, err = os.MkdirTemp("", "shmring-bridge-demo-"); err != nil {
			return res, fmt.Errorf("demo: make the server's store directory: %w", err)
		}
		defer func() { err = errors.Join(err, os.RemoveAll(store)) }()
	}
	res.Store = store
	srv, err := natsembed.New(store, 0)
	if err != nil {
		return res, err
	}
	defer srv.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: bridgeStream, Subjects: []string{bridgeSubject}, Storage: jetstream.FileStorage}); err != nil {
		return res, fmt.Errorf("demo: create the stream: %w", srv.Explain(err))
	}

	var opts []ipc.Option
	if cfg.Dir != "" {
		opts = append(opts, ipc.WithDir(cfg.Dir))
	}
	maxMsg := min(cfg.Capacity/8, cfg.Size)
	name := cfg.Name
	if name == "" {
		name = fmt.Sprintf("ringctl-bridge-demo-%d", os.Getpid())
	}
	ringOut, err := ipc.Create(name+"-out", ipc.Config{Kind: ipc.MPSC, Producers: cfg.Producers, Sequences: true, Capacity: cfg.Capacity, MaxMessage: maxMsg}, opts...)
	if err != nil {
		return res, err
	}
	res.RingOutPath = ringOut.Path()
	defer func() { err = errors.Join(err, ringOut.Close(), os.Remove(res.RingOutPath)) }()
	ringIn, err := ipc.Create(name+"-in", ipc.Config{Sequences: true, Capacity: cfg.Capacity, MaxMessage: maxMsg,
		HighWater: cfg.Capacity / 2, LowWater: cfg.Capacity / 4}, opts...)
	if err != nil {
		return res, err
	}
	res.RingInPath = ringIn.Path()
	defer func() { err = errors.Join(err, ringIn.Close(), os.Remove(res.RingInPath)) }()

	out, err := bridge.NewOut(ctx, ringOut, bridge.OutConfig{URL: srv.URL(), Subject: bridgeSubject, Stream: bridgeStream, Window: cfg.Window})
	if err != nil {
		return res, err
	}
	stopOut := run(out.Run)
	defer func() { err = errors.Join(err, stopOut(), out.Close()) }()
	in, err := bridge.NewIn(ctx, ringIn, bridge.InConfig{URL: srv.URL(), Stream: bridgeStream, Consumer: bridgeConsumer, CreateConsumer: true, Batch: cfg.Batch})
	if err != nil {
		return res, err
	}
	stopIn := run(in.Run)
	defer func() { err = errors.Join(err, stopIn(), in.Close()) }()

	n, size, p := strconv.FormatUint(cfg.Messages, 10), strconv.FormatUint(cfg.Size, 10), strconv.Itoa(cfg.Producers)
	res.Elapsed, res.CPU, err = group(exe, RoleBridgeConsumer, RoleBridgeProducer, cfg.Producers,
		[]string{filepath.Clean(res.RingInPath), n, size, p}, []string{filepath.Clean(res.RingOutPath), n, size, p})
	if err != nil {
		return res, err
	}
	total := cfg.Messages * uint64(cfg.Producers)
	res.Verified = total
	// The consumer has read everything; the last acknowledgements to the
	// bridges may still be on their way.
	for end := time.Now().Add(time.Minute); out.Stats().Released < total || in.Stats().Acked < total; {
		if time.Now().After(end) {
			return res, fmt.Errorf("demo: the bridges did not settle: out %v; in %v", out.Stats(), in.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	res.Out, res.In = out.Stats(), in.Stats()
	if res.RingOut, err = ringOut.Stats(); err != nil {
		return res, err
	}
	if res.RingIn, err = ringIn.Stats(); err != nil {
		return res, err
	}
	s, err := js.Stream(ctx, bridgeStream)
	if err != nil {
		return res, err
	}
	res.StreamMsgs = s.CachedInfo().State.Msgs
	if res.StreamMsgs != total {
		return res, fmt.Errorf("demo: the stream holds %d messages, not %d", res.StreamMsgs, total)
	}
	return res, nil
}

// run runs f on a goroutine until the function it returns is called, which
// returns f's error (nil for a cancellation).
func run(f func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	return func() error {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
}
