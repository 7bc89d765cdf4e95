package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/ipc"
)

// childEnv is the environment variable that makes bridgebench a child of
// another bridgebench (a producer or the bridge of one case), its value
// the child's childSpec in JSON. Not a flag: nobody runs a child by hand.
const childEnv = "BRIDGEBENCH_CHILD"

// The children's roles, and the producers' modes.
const (
	roleProducer = "producer"
	roleBridge   = "bridge"

	modeRing     = "ring"      // write into the ring (bridged, ring-only)
	modeDirect   = "direct"    // PublishAsync (directSend)
	modeDirectID = "direct-id" // PublishAsync with Nats-Msg-Ids
	modeRawID    = "raw-id"    // the bare client, a PubAck per message (rawSend)
	modeFastID   = "fast-id"   // the bare client, fast-ingest batches
)

// childSpec is what a child does.
type childSpec struct {
	Role     string        // roleProducer or roleBridge
	Mode     string        // a producer's: modeRing, modeDirect, ...
	K        int           // a producer's number, 0-based (its ring slot ID K+1)
	Per      int           // a producer's messages
	Size     int           // their size in bytes
	Interval time.Duration // a paced producer's interval between messages (0: as fast as it can)
	Timed    bool          // a producer reports each send call's duration
	URL      string        // the NATS server's
	Ring     string        // the ring's name (modeRing, the bridge)
	Window   int           // the bridge's window; a direct publisher's pending limit
	Conns    int           // the bridge's OutConfig.Conns
	ID       string        // the bridge's OutConfig.ID ("": its default)
	Total    int           // the bridge reports when it has released this many messages (0: never)
}

// The child's protocol with its parent.
//
// stdin, from the parent: a producer waits for one byte ('g': go) before
// its first message; the bridge, told by one byte ('p') that every
// producer is done, starts watching its released count (when Total is
// set). End of file (the parent closed the pipe, or died): a producer
// exits at once with status 3; the bridge stops (Run cancelled, the Out
// closed) and exits 0.
//
// stdout, to the parent, lines of text, CPU times in nanoseconds of the
// child's own getrusage (RUSAGE_SELF: every thread):
//
//	ready CPU           set up (ring opened, connected), waiting for go
//	done CPU N          a producer: every message sent, acknowledged if
//	                    published directly; N durations follow, each 8
//	                    bytes little-endian nanoseconds (N is 0 unless Timed)
//	released CPU        the bridge: Total messages released from the ring
//
// Errors go to stderr, and the exit status is not 0.

// childMain runs a child of spec js and returns its exit status.
func childMain(js string) int {
	var sp childSpec
	if err := json.Unmarshal([]byte(js), &sp); err != nil {
		fmt.Fprintf(os.Stderr, "bridgebench child: %s=%q: %v (it is set by bridgebench for its own children; unset it)\n", childEnv, js, err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	var err error
	switch sp.Role {
	case roleProducer:
		err = childProducer(sp, out)
	case roleBridge:
		err = childBridge(sp, out)
	default:
		err = fmt.Errorf("unknown role %q", sp.Role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bridgebench child (%s %d): %v\n", sp.Role, sp.K, err)
		return 1
	}
	return 0
}

// report writes a line to the parent, and bin after it.
func report(out *bufio.Writer, line string, bin []byte) error {
	_, err := out.WriteString(line + "\n")
	if err == nil {
		_, err = out.Write(bin)
	}
	return errors.Join(err, out.Flush())
}

// stdinBytes delivers the bytes the parent writes on stdin, and closes
// the channel at end of file.
func stdinBytes() <-chan byte {
	c := make(chan byte, 4)
	go func() {
		defer close(c)
		var b [1]byte
		for {
			if _, err := os.Stdin.Read(b[:]); err != nil {
				return
			}
			c <- b[0]
		}
	}()
	return c
}

// childProducer is one producer: it sets up (opens the ring, or connects),
// says ready, waits for go, sends its messages and says done.
func childProducer(sp childSpec, out *bufio.Writer) error {
	var send func(k, i int, msg []byte) error
	finish := func() error { return nil }
	var err error
	switch sp.Mode {
	case modeRing:
		r, err := ipc.Open(sp.Ring)
		if err != nil {
			return err
		}
		defer r.Close()
		pr, err := r.Producer(&ipc.ProducerConfig{ID: sp.K + 1, Wait: ipc.Wait{PeerTimeout: time.Minute}})
		if err != nil {
			return err
		}
		defer pr.Close()
		ctx := context.Background()
		send = func(_, _ int, msg []byte) error { return pr.Write(ctx, msg) }
	case modeDirect, modeDirectID:
		send, finish, err = directSend(sp.URL, sp.Window, sp.K, 1, sp.Mode == modeDirectID)
	case modeRawID, modeFastID:
		send, finish, err = rawSend(sp.URL, sp.Window, sp.K, 1, sp.Mode == modeFastID)
	default:
		err = fmt.Errorf("unknown mode %q", sp.Mode)
	}
	if err != nil {
		return err
	}
	in := stdinBytes()
	if err := report(out, fmt.Sprintf("ready %d", cpuTime()), nil); err != nil {
		return errors.Join(err, finish())
	}
	if _, ok := <-in; !ok {
		os.Exit(3) // the parent is gone, or gave up: no clean-up to wait for
	}
	go func() {
		for range in { // until end of file
		}
		os.Exit(3)
	}()
	times, err := produceOne(sp.K, sp.Per, sp.Size, sp.Interval, sp.Timed, send)
	if err = errors.Join(err, finish()); err != nil {
		return err
	}
	bin := make([]byte, 8*len(times))
	for i, d := range times {
		binary.LittleEndian.PutUint64(bin[8*i:], uint64(d))
	}
	return report(out, fmt.Sprintf("done %d %d", cpuTime(), len(times)), bin)
}

// childBridge is the case's out-bridge: it opens the ring, makes the Out,
// runs it, says ready; told that the producers are done, it says released
// when Total messages are; it stops at end of file on stdin.
func childBridge(sp childSpec, out *bufio.Writer) (err error) {
	// A CPU profile and an execution trace of this bridge process, one
	// file each per case, if asked for.
	for _, rec := range []struct {
		env, ext string
		start    func(io.Writer) error
		stop     func()
	}{
		{"BRIDGEBENCH_BRIDGE_CPUPROFILE", "pprof", pprof.StartCPUProfile, pprof.StopCPUProfile},
		{"BRIDGEBENCH_BRIDGE_TRACE", "trace", trace.Start, trace.Stop},
	} {
		end, rerr := recordTo(os.Getenv(rec.env), rec.ext, rec.start, rec.stop)
		if rerr != nil {
			return rerr
		}
		defer func() { err = errors.Join(err, end()) }() // childBridge's err
	}
	r, err := ipc.Open(sp.Ring)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	ctx, cancel := withTimeout()
	b, err := bridge.NewOut(ctx, r, bridge.OutConfig{URL: sp.URL, Subject: subject, Window: sp.Window, Conns: sp.Conns, ID: sp.ID})
	cancel()
	if err != nil {
		return err
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	stopped := func() error {
		err := <-done
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return errors.Join(err, b.Close())
	}
	in := stdinBytes()
	if err := report(out, fmt.Sprintf("ready %d", cpuTime()), nil); err != nil {
		stopRun()
		return errors.Join(err, stopped())
	}
	for {
		select {
		case _, ok := <-in:
			if !ok {
				stopRun()
				return stopped()
			}
			if sp.Total == 0 {
				continue
			}
			// Every producer is done: watch the count (at the clock's
			// resolution, 0.1 ms, as the in-process shape does).
			for b.Stats().Released < uint64(sp.Total) {
				select {
				case err := <-done:
					return fmt.Errorf("the bridge stopped with %d of %d messages released: %w", b.Stats().Released, sp.Total, errors.Join(err, b.Close()))
				default:
				}
				time.Sleep(100 * time.Microsecond)
			}
			if err := report(out, fmt.Sprintf("released %d", cpuTime()), nil); err != nil {
				stopRun()
				return errors.Join(err, stopped())
			}
		case err := <-done:
			return fmt.Errorf("the bridge stopped: %w", errors.Join(err, b.Close()))
		}
	}
}

// recordTo starts a recording (start, stop) into dir/bridge-PID.ext, and
// returns what ends it; nothing if dir is "".
func recordTo(dir, ext string, start func(io.Writer) error, stop func()) (end func() error, err error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("bridge-%d.%s", os.Getpid(), ext)))
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() error { stop(); return f.Close() }, nil
}
