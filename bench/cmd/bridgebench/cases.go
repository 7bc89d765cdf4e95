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

// pacedResult is a paced case's figures.
type pacedResult struct {
	writeP50, writeP99 time.Duration // the producers' Write (or PublishAsync) calls
	e2eP50, e2eP99     time.Duration // producer's timestamp to the reader
}

// setup is a case's stream, and its ring and out-bridge if bridged.
type setup struct {
	stream string
	nc     *nats.Conn
	js     jetstream.JetStream
	ring   *ipc.Ring
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
		return nil, fmt.Errorf("create the stream: %w", err)
	}
	stops = append(stops, func() error {
		ctx, cancel := withTimeout()
		defer cancel()
		return s.js.DeleteStream(ctx, s.stream)
	})
	if !ring {
		return s, nil
	}
	name := fmt.Sprintf("bridgebench-%d", os.Getpid())
	if s.ring, err = ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: p.producers, Sequences: true, Capacity: uint64(p.ringMiB) << 20, MaxMessage: uint64(max(size, 64))}); err != nil {
		return nil, err
	}
	stops = append(stops, func() error { return errors.Join(s.ring.Close(), ipc.Remove(name)) })
	if !bridged {
		return s, nil
	}
	if s.out, err = bridge.NewOut(ctx, s.ring, bridge.OutConfig{URL: srv.URL(), Subject: subject, Window: p.window, Conns: p.conns}); err != nil {
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
// with send(k, i, msg), each message due at interval after the previous one
// (0: as fast as possible); it returns the time each call took if timed.
func produce(p params, n, size int, interval time.Duration, timed bool, send func(k, i int, msg []byte) error) ([]time.Duration, error) {
	per := n / p.producers
	var wg sync.WaitGroup
	errs := make([]error, p.producers)
	times := make([][]time.Duration, p.producers)
	for k := range p.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, size)
			if timed {
				times[k] = make([]time.Duration, 0, per)
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
					errs[k] = fmt.Errorf("producer %d, message %d: %w", k, i, err)
					return
				}
				if timed {
					times[k] = append(times[k], time.Since(t0))
				}
			}
		}()
	}
	wg.Wait()
	return slices.Concat(times...), errors.Join(errs...)
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

// directSend returns a send function publishing with PublishAsync, each
// producer on its own connection with a pending window of p.window, and a
// function that waits for every publish to complete and closes them.
// With ids, each message carries a Nats-Msg-Id (producer:number), as the
// bridge's do, so that the stream de-duplicates it.
func directSend(srv *natsembed.Server, p params, ids bool) (func(k, i int, msg []byte) error, func() error, error) {
	var failed atomic.Uint64
	var lastErr atomic.Value
	conns := make([]*nats.Conn, p.producers)
	jss := make([]jetstream.JetStream, p.producers)
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
		if conns[k], err = nats.Connect(srv.URL()); err != nil {
			_ = finish()
			return nil, nil, err
		}
		jss[k], err = jetstream.New(conns[k], jetstream.WithPublishAsyncMaxPending(p.window),
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
			_, err := jss[k].PublishAsync(subject, msg, opts...)
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
			send, finish, err = rawSend(srv, p, raw == rawFast)
		} else {
			send, finish, err = directSend(srv, p, ids)
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

// latencies collects end-to-end latencies until total have arrived.
type latencies struct {
	mu   sync.Mutex
	lat  []time.Duration
	want int
	done chan struct{}
}

func newLatencies(total int) *latencies {
	return &latencies{lat: make([]time.Duration, 0, total), want: total, done: make(chan struct{})}
}

func (l *latencies) add(msg []byte) {
	d := time.Duration(time.Now().UnixNano() - int64(binary.LittleEndian.Uint64(msg[8:])))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lat = append(l.lat, d)
	if len(l.lat) == l.want {
		close(l.done)
	}
}

// wait waits for every message, or ctx.
func (l *latencies) wait(ctx context.Context) ([]time.Duration, error) {
	select {
	case <-l.done:
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		return nil, fmt.Errorf("%d of %d messages arrived: %w", len(l.lat), l.want, ctx.Err())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lat), nil
}

// pacedRun runs one paced case: "bridged", "direct" or "ring-only".
func pacedRun(srv *natsembed.Server, p params, size int, kase string) (res pacedResult, err error) {
	ring, bridged := kase != "direct", kase == "bridged"
	s, err := newSetup(srv, p, size, false, ring, bridged)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, s.stop()) }()
	total := p.paced / p.producers * p.producers
	lat := newLatencies(total)
	ctx, cancel := withTimeout()
	defer cancel()
	if kase == "ring-only" {
		c, cerr := s.ring.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{PeerTimeout: time.Minute}})
		if cerr != nil {
			return res, cerr
		}
		readErr := make(chan error, 1)
		go func() {
			defer c.Close()
			for n := 0; n < total; {
				k, err := c.Read(ctx, 256, lat.add)
				if err != nil {
					readErr <- err
					return
				}
				n += k
			}
			readErr <- nil
		}()
		defer func() { err = errors.Join(err, <-readErr) }()
	} else {
		cons, err := s.js.OrderedConsumer(ctx, s.stream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return res, err
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { lat.add(m.Data()) })
		if err != nil {
			return res, err
		}
		defer cc.Stop()
	}
	interval := time.Duration(float64(time.Second) * float64(p.producers) / float64(p.rate))
	var writes []time.Duration
	if kase == "direct" {
		send, finish, err := directSend(srv, p, false)
		if err != nil {
			return res, err
		}
		writes, err = produce(p, total, size, interval, true, send)
		if err = errors.Join(err, finish()); err != nil {
			return res, err
		}
	} else {
		send, closeAll, err := ringSend(s, p)
		if err != nil {
			return res, err
		}
		writes, err = produce(p, total, size, interval, true, send)
		closeAll()
		if err != nil {
			return res, err
		}
	}
	e2e, err := lat.wait(ctx)
	if err != nil {
		return res, err
	}
	slices.Sort(writes)
	slices.Sort(e2e)
	return pacedResult{writeP50: pct(writes, 50), writeP99: pct(writes, 99), e2eP50: pct(e2e, 50), e2eP99: pct(e2e, 99)}, nil
}
