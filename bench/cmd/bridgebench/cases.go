package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natsembed"
	"github.com/shmring/shmring/ipc"
)

// The subject every case publishes to, captured by a stream created for
// the case (BB1, BB2, ...: a file stream created again under the name just
// deleted can fail, "error creating store for stream") and deleted after
// it.
const subject = "BB.x"

// streams numbers the cases' streams.
var streams atomic.Int64

// setup is a case's stream, and its ring and out-bridge if bridged.
type setup struct {
	stream string
	nc     *nats.Conn
	js     jetstream.JetStream
	ring   *ipc.Ring
	name   string // the ring's
	out    *bridge.Out
	stop   func() error // stops everything, the first error
}

// newSetup makes the stream (memory or file storage), and, if bridged or
// ring, an MPSC ring with p.producers slots; if bridged, an out-bridge
// running on it.
func newSetup(srv *natsembed.Server, p params, size int, file, ring, bridged bool) (_ *setup, err error) {
	return newSetupBatched(srv, p, size, file, ring, bridged, false)
}

// newSetupBatched is newSetup, the stream allowing fast-ingest batch
// publishing if batched.
func newSetupBatched(srv *natsembed.Server, p params, size int, file, ring, bridged, batched bool) (_ *setup, err error) {
	// s is not the result: a failure returns nil, and the stops still
	// need s.
	s := &setup{}
	var stops []func() error
	s.stop = func() error {
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = s.stop()
		}
	}()
	if s.nc, err = nats.Connect(srv.URL()); err != nil {
		return nil, err
	}
	stops = append(stops, func() error { s.nc.Close(); return nil })
	if s.js, err = jetstream.New(s.nc); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout()
	defer cancel()
	storage := jetstream.MemoryStorage
	if file {
		storage = jetstream.FileStorage
	}
	s.stream = "BB" + strconv.FormatInt(streams.Add(1), 10)
	if _, err = s.js.CreateStream(ctx, jetstream.StreamConfig{Name: s.stream, Subjects: []string{subject}, Storage: storage, AllowBatchPublish: batched}); err != nil {
		return nil, fmt.Errorf("create the stream: %w", srv.Explain(err))
	}
	stops = append(stops, func() error {
		ctx, cancel := withTimeout()
		defer cancel()
		return s.js.DeleteStream(ctx, s.stream)
	})
	if !ring {
		return s, nil
	}
	name := ringName()
	s.name = name
	if s.ring, err = ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: p.producers, Sequences: true, Capacity: uint64(p.ringMiB) << 20, MaxMessage: uint64(max(size, 64))}); err != nil {
		return nil, err
	}
	stops = append(stops, func() error { return errors.Join(s.ring.Close(), ipc.Remove(name)) })
	if !bridged {
		return s, nil
	}
	if s.out, err = bridge.NewOut(ctx, s.ring, bridge.OutConfig{URL: srv.URL(), Subject: subject, Window: p.window, Conns: p.conns, ID: p.id}); err != nil {
		return nil, err
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.out.Run(runCtx) }()
	stops = append(stops, func() error {
		stopRun()
		err := <-done
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return errors.Join(err, s.out.Close())
	})
	return s, nil
}

// ringName is the name of the ring of every case (one at a time).
func ringName() string { return fmt.Sprintf("bridgebench-%d", os.Getpid()) }

// bridgeConns is the number of connections the bridge publishes on with
// p (an out-bridge made and closed to ask it).
func bridgeConns(srv *natsembed.Server, p params) (int, error) {
	s, err := newSetup(srv, p, 64, false, true, true)
	if err != nil {
		return 0, err
	}
	n := s.out.Stats().Conns
	return n, s.stop()
}

// message fills msg (at least 16 bytes) with producer k's number i and the
// time now.
func message(msg []byte, k, i int) {
	binary.LittleEndian.PutUint64(msg, uint64(k)<<48|uint64(i))
	binary.LittleEndian.PutUint64(msg[8:], uint64(time.Now().UnixNano()))
}

// produce runs p.producers goroutines, each sending n/p.producers messages
// with produceOne; it returns the time each call took if timed.
func produce(p params, n, size int, interval time.Duration, timed bool, send func(k, i int, msg []byte) error) ([]time.Duration, error) {
	per := n / p.producers
	var wg sync.WaitGroup
	errs := make([]error, p.producers)
	times := make([][]time.Duration, p.producers)
	for k := range p.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			times[k], errs[k] = produceOne(k, per, size, interval, timed, send)
		}()
	}
	wg.Wait()
	return slices.Concat(times...), errors.Join(errs...)
}

// produceOne is producer k: it sends per messages of size bytes with
// send(k, i, msg), each due at interval after the previous one (0: as fast
// as possible), and returns the time each call took if timed. A
// producer's goroutine in-process, a child's main goroutine in processes.
func produceOne(k, per, size int, interval time.Duration, timed bool, send func(k, i int, msg []byte) error) ([]time.Duration, error) {
	msg := make([]byte, size)
	var times []time.Duration
	if timed {
		times = make([]time.Duration, 0, per)
	}
	start := time.Now()
	for i := range per {
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		message(msg, k, i)
		t0 := time.Now()
		if err := send(k, i, msg); err != nil {
			return times, fmt.Errorf("producer %d, message %d: %w", k, i, err)
		}
		if timed {
			times = append(times, time.Since(t0))
		}
	}
	return times, nil
}

// ringSend returns a send function writing into s's ring, one producer per
// slot, and a function closing them.
func ringSend(s *setup, p params) (func(k, i int, msg []byte) error, func(), error) {
	ps := make([]*ipc.Producer, p.producers)
	closeAll := func() {
		for _, pr := range ps {
			if pr != nil {
				_ = pr.Close()
			}
		}
	}
	for k := range ps {
		var err error
		if ps[k], err = s.ring.Producer(&ipc.ProducerConfig{ID: k + 1, Wait: ipc.Wait{PeerTimeout: time.Minute}}); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	ctx := context.Background()
	return func(k, _ int, msg []byte) error { return ps[k].Write(ctx, msg) }, closeAll, nil
}

// directSend returns a send function publishing with PublishAsync to the
// server at url, for producers base to base+n-1 (send's k), each on its
// own connection with a pending window of window, and a function that
// waits for every publish to complete and closes them.
// With ids, each message carries a Nats-Msg-Id (producer:number), as the
// bridge's do, so that the stream de-duplicates it.
func directSend(url string, window, base, n int, ids bool) (func(k, i int, msg []byte) error, func() error, error) {
	var failed atomic.Uint64
	var lastErr atomic.Value
	conns := make([]*nats.Conn, n)
	jss := make([]jetstream.JetStream, n)
	finish := func() error {
		for k, js := range jss {
			if js != nil {
				<-js.PublishAsyncComplete()
			}
			if conns[k] != nil {
				conns[k].Close()
			}
		}
		if n := failed.Load(); n > 0 {
			return fmt.Errorf("%d publishes failed, the last: %v", n, lastErr.Load())
		}
		return nil
	}
	for k := range conns {
		var err error
		if conns[k], err = nats.Connect(url); err != nil {
			_ = finish()
			return nil, nil, err
		}
		jss[k], err = jetstream.New(conns[k], jetstream.WithPublishAsyncMaxPending(window),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
				failed.Add(1)
				lastErr.Store(err.Error())
			}))
		if err != nil {
			_ = finish()
			return nil, nil, err
		}
	}
	// The buffer is reused: PublishAsync has written it to the connection
	// when it returns, and only a retry (none here) would read it again.
	send := func(k, i int, msg []byte) error {
		var opts []jetstream.PublishOpt
		if ids {
			opts = append(opts, jetstream.WithMsgID(strconv.Itoa(k)+":"+strconv.Itoa(i)))
		}
		for {
			_, err := jss[k-base].PublishAsync(subject, msg, opts...)
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return err
			}
		}
	}
	return send, finish, nil
}

// cpuTime is the process's CPU time so far (user and system): the
// producers', the bridge's or the publishers' and the embedded server's.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tputResult is a throughput case's figures.
type tputResult struct {
	rate float64       // messages per second
	cpu  time.Duration // the process's CPU time per message
}

// throughput runs one throughput case and returns messages per second and
// the CPU time per message: bridged, or direct (with Nats-Msg-Ids if ids).
func throughput(srv *natsembed.Server, p params, size int, bridged, file, ids bool, raw int) (tputResult, error) {
	rate, cpu, err := throughputRun(srv, p, size, bridged, file, ids, raw)
	return tputResult{rate: rate, cpu: cpu}, err
}

func throughputRun(srv *natsembed.Server, p params, size int, bridged, file, ids bool, raw int) (float64, time.Duration, error) {
	if !p.inproc {
		return throughputProcs(srv, p, size, bridged, file, ids, raw)
	}
	s, err := newSetupBatched(srv, p, size, file, bridged, bridged, raw == rawFast)
	if err != nil {
		return 0, 0, err
	}
	total := p.messages / p.producers * p.producers
	var elapsed, cpu time.Duration
	if bridged {
		send, closeAll, err := ringSend(s, p)
		if err != nil {
			return 0, 0, errors.Join(err, s.stop())
		}
		start, cpu0 := time.Now(), cpuTime()
		_, err = produce(p, total, size, 0, false, send)
		for err == nil && s.out.Stats().Released < uint64(total) {
			time.Sleep(100 * time.Microsecond) // the clock's resolution: 0.1 ms
		}
		elapsed, cpu = time.Since(start), cpuTime()-cpu0
		closeAll()
		if err != nil {
			return 0, 0, errors.Join(err, s.stop())
		}
	} else {
		var send func(k, i int, msg []byte) error
		var finish func() error
		if raw != 0 {
			send, finish, err = rawSend(srv.URL(), p.window, 0, p.producers, raw == rawFast)
		} else {
			send, finish, err = directSend(srv.URL(), p.window, 0, p.producers, ids)
		}
		if err != nil {
			return 0, 0, errors.Join(err, s.stop())
		}
		start, cpu0 := time.Now(), cpuTime()
		_, err = produce(p, total, size, 0, false, send)
		err = errors.Join(err, finish())
		elapsed, cpu = time.Since(start), cpuTime()-cpu0
		if err != nil {
			return 0, 0, errors.Join(err, s.stop())
		}
	}
	if err := checkStream(s, total); err != nil {
		return 0, 0, errors.Join(err, s.stop())
	}
	return float64(total) / elapsed.Seconds(), cpu / time.Duration(total), s.stop()
}

// throughputProcs is throughputRun with every producer its own process,
// and the bridge too (runKids): the clock runs from the producers' go to
// the bridge's released (every message released from the ring) or to the
// last direct producer's done (every publish acknowledged); the CPU time
// is the parent's (the server's, and the orchestration's) over that time,
// and each child's from its ready to its done or released (its start-up
// and exit left out).
func throughputProcs(srv *natsembed.Server, p params, size int, bridged, file, ids bool, raw int) (_ float64, _ time.Duration, err error) {
	s, err := newSetupBatched(srv, p, size, file, bridged, false, raw == rawFast)
	if err != nil {
		return 0, 0, err
	}
	total := p.messages / p.producers * p.producers
	ctx, cancel := withTimeout()
	defer cancel()
	g := newGroup(p.producers + 1)
	prod := childSpec{Role: roleProducer, Mode: producerMode(bridged, ids, raw), Per: total / p.producers, Size: size, URL: srv.URL(), Ring: s.name, Window: p.window}
	var br *childSpec
	if bridged {
		br = &childSpec{Role: roleBridge, URL: srv.URL(), Ring: s.name, Window: p.window, Conns: p.conns, ID: p.id, Total: total}
	}
	res, err := runKids(ctx, g, p, br, prod)
	if err == nil {
		err = g.close(ctx)
	}
	g.kill()
	if err == nil {
		err = checkStream(s, total)
	}
	if err = errors.Join(err, s.stop()); err != nil {
		return 0, 0, err
	}
	return float64(total) / res.elapsed.Seconds(), res.cpu / time.Duration(total), nil
}

// checkStream checks that the stream holds total messages.
func checkStream(s *setup, total int) error {
	ctx, cancel := withTimeout()
	defer cancel()
	st, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return err
	}
	if got := st.CachedInfo().State.Msgs; got != uint64(total) {
		return fmt.Errorf("the stream holds %d messages, not %d", got, total)
	}
	return nil
}
