package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/internal/natsembed"
	"github.com/shmring/shmring/ipc"
)

// pacedResult is a paced case's figures.
type pacedResult struct {
	writeP50, writeP99 time.Duration // the producers' Write (or PublishAsync) calls
	e2eP50, e2eP99     time.Duration // producer's timestamp to the reader
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
	s, err := newSetup(srv, p, size, false, ring, bridged && p.inproc)
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
		defer func() {
			if err != nil {
				cancel() // the reader would wait for messages that will not come
				<-readErr
				return
			}
			err = <-readErr
		}()
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
	if !p.inproc {
		// Every producer its own process, and the bridge (runKids).
		g := newGroup(p.producers + 1)
		defer g.kill()
		mode := modeRing
		if kase == "direct" {
			mode = modeDirect
		}
		prod := childSpec{Role: roleProducer, Mode: mode, Per: total / p.producers, Size: size, Interval: interval, Timed: true, URL: srv.URL(), Ring: s.name, Window: p.window}
		var br *childSpec
		if bridged {
			br = &childSpec{Role: roleBridge, URL: srv.URL(), Ring: s.name, Window: p.window, Conns: p.conns, ID: p.id}
		}
		kr, err := runKids(ctx, g, p, br, prod)
		if err != nil {
			return res, err
		}
		writes = kr.times
		e2e, err := lat.wait(ctx)
		if err != nil {
			return res, err
		}
		if err := g.close(ctx); err != nil {
			return res, err
		}
		return percentiles(writes, e2e), nil
	}
	if kase == "direct" {
		send, finish, err := directSend(srv.URL(), p.window, 0, p.producers, false)
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
	return percentiles(writes, e2e), nil
}

// percentiles sorts writes and e2e and returns their p50 and p99.
func percentiles(writes, e2e []time.Duration) pacedResult {
	slices.Sort(writes)
	slices.Sort(e2e)
	return pacedResult{writeP50: pct(writes, 50), writeP99: pct(writes, 99), e2eP50: pct(e2e, 50), e2eP99: pct(e2e, 99)}
}
