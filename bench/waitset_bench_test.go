package bench_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/waitset"
)

// Wait sets (issue 16): the figures docs/waitset.md reports. Each says what
// it compares; none asserts a timing.
//
//	go test -run '^$' -bench 'WaitSet(Idle|Wake)' -benchtime 20x ./bench
//	go test -run '^$' -bench 'WaitSetWakeRatio' -benchtime 2000x -count 4 ./bench
//	go test -run '^$' -bench 'WaitSetIdleLarge' -benchtime 30x -count 2 ./bench
//	go test -run '^$' -bench 'WaitSetBusy' -benchtime 1000000x ./bench

// waitsetRings makes n rings in a temporary directory, each with a producer
// attached (Park: it never spins).
func waitsetRings(b *testing.B, n int) ([]*ipc.Ring, []*ipc.Producer) {
	return waitsetRingsCfg(b, n, ipc.Config{Capacity: 1 << 16})
}

// waitsetRingsCfg is waitsetRings with rings of cfg (Doorbell: flag bit 4,
// a set sleeps on one doorbell for them all, in their one directory).
func waitsetRingsCfg(b *testing.B, n int, cfg ipc.Config) ([]*ipc.Ring, []*ipc.Producer) {
	dir := b.TempDir()
	var rings []*ipc.Ring
	var ps []*ipc.Producer
	for i := range n {
		r, err := ipc.Create(filepath.Join(dir, fmt.Sprint("r", i)), cfg)
		if err != nil {
			b.Fatal(err)
		}
		p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}})
		if err != nil {
			b.Fatal(err)
		}
		rings, ps = append(rings, r), append(ps, p)
	}
	b.Cleanup(func() {
		for i := range rings {
			_ = ps[i].Close()
			_ = rings[i].Close()
		}
	})
	return rings, ps
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWaitSetIdle64 measures the CPU that 64 idle rings cost while
// they are waited on: one set waiting (its default Hybrid wait, which ends
// parked), against 64 ipc Consumers each parked in a goroutine of its own,
// and the baseline of the same rings and roles with nobody waiting (the
// consumers' and producers' heartbeats). Each iteration is 100 ms of wall
// time; the metric is the whole process's CPU in percent of one core.
// set-doorbell is the set over 64 rings with flag bit 4 (one doorbell).
func BenchmarkWaitSetIdle64(b *testing.B) {
	const n = 64
	doorbell := false // the rings of the next run have flag bit 4
	run := func(b *testing.B, wait func(ctx context.Context, rings []*ipc.Ring) func()) {
		rings, _ := waitsetRingsCfg(b, n, ipc.Config{Capacity: 1 << 16, Doorbell: doorbell})
		ctx, cancel := context.WithCancel(context.Background())
		stop := wait(ctx, rings)
		defer func() { cancel(); stop() }()
		time.Sleep(50 * time.Millisecond) // past the spinning of the waits' start
		cpu0, wall0 := cpuTime(), time.Now()
		for b.Loop() {
			time.Sleep(100 * time.Millisecond)
		}
		b.ReportMetric(100*float64(cpuTime()-cpu0)/float64(time.Since(wall0)), "cpu%")
	}
	b.Run("baseline", func(b *testing.B) {
		run(b, func(ctx context.Context, rings []*ipc.Ring) func() {
			s := newSet(b, nil, rings)
			return func() { _ = s.Close() }
		})
	})
	b.Run("set", func(b *testing.B) {
		run(b, func(ctx context.Context, rings []*ipc.Ring) func() {
			s := newSet(b, nil, rings)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = s.Read(ctx, 1, func(*waitset.Member, []byte) {})
			}()
			return func() { _ = s.Close(); <-done }
		})
	})
	b.Run("set-doorbell", func(b *testing.B) {
		doorbell = true
		defer func() { doorbell = false }()
		run(b, func(ctx context.Context, rings []*ipc.Ring) func() {
			s := newSet(b, nil, rings)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = s.Read(ctx, 1, func(*waitset.Member, []byte) {})
			}()
			return func() { _ = s.Close(); <-done }
		})
	})
	b.Run("consumers", func(b *testing.B) {
		run(b, func(ctx context.Context, rings []*ipc.Ring) func() {
			var wg sync.WaitGroup
			for _, r := range rings {
				c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{PeerTimeout: time.Hour}})
				if err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					_, _ = c.Read(ctx, 1, func([]byte) {})
				}()
			}
			return wg.Wait // after the cancel
		})
	})
}

// BenchmarkWaitSetIdleLarge compares the idle cost of a set of 300 rings
// (a reader and two helper goroutines, each in its futex_waitv: 127 + 127
// + 46 members) with a set of 64 (one futex_waitv), each against the
// baseline of its rings with nobody waiting. Each iteration is 100 ms of
// wall time; the metric is the whole process's CPU in percent of one core.
func BenchmarkWaitSetIdleLarge(b *testing.B) {
	for _, n := range []int{64, 300} {
		for _, waiting := range []bool{false, true} {
			name := fmt.Sprint(n, "-baseline")
			if waiting {
				name = fmt.Sprint(n, "-set")
			}
			b.Run(name, func(b *testing.B) {
				rings, _ := waitsetRings(b, n)
				s := newSet(b, nil, rings)
				done := make(chan struct{})
				if waiting {
					go func() {
						defer close(done)
						_, _ = s.Read(context.Background(), 1, func(*waitset.Member, []byte) {})
					}()
				} else {
					close(done)
				}
				defer func() { _ = s.Close(); <-done }()
				time.Sleep(50 * time.Millisecond) // past the spinning of the wait's start
				st0, cpu0, wall0 := s.Stats(), cpuTime(), time.Now()
				for b.Loop() {
					time.Sleep(100 * time.Millisecond)
				}
				wall := time.Since(wall0)
				b.ReportMetric(100*float64(cpuTime()-cpu0)/float64(wall), "cpu%")
				b.ReportMetric(float64(s.Stats().Sleeps-st0.Sleeps)/wall.Seconds(), "sleeps/s")
			})
		}
	}
}

func newSet(b *testing.B, cfg *waitset.Config, rings []*ipc.Ring) *waitset.Set {
	s, err := waitset.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range rings {
		if _, err := s.Join(r); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkWaitSetWake measures wake-up latency: the time from a write to
// the callback that receives it, when the reader is asleep (Park: no
// spinning), one message at a time with a pause after each, so every one
// finds the reader parked. A single parked ipc Consumer against a set of 1
// and a set of 64 rings (the message goes to each member in turn, or, for
// set-64-one, always to the first). Metrics:
// p50 and p99 in ns.
func BenchmarkWaitSetWake(b *testing.B) {
	park := ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}
	measure := func(b *testing.B, ps []*ipc.Producer, lat <-chan time.Duration) {
		var ds []time.Duration
		msg := make([]byte, 8)
		i := 0
		for b.Loop() {
			time.Sleep(200 * time.Microsecond) // the reader goes to sleep
			binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
			if err := ps[i%len(ps)].Write(context.Background(), msg); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, <-lat)
			i++
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2]), "p50-ns")
		b.ReportMetric(float64(ds[len(ds)*99/100]), "p99-ns")
	}
	since := func(msg []byte) time.Duration {
		return time.Duration(time.Now().UnixNano() - int64(binary.LittleEndian.Uint64(msg)))
	}
	b.Run("consumer", func(b *testing.B) {
		rings, ps := waitsetRings(b, 1)
		c, err := rings[0].Consumer(&ipc.ConsumerConfig{Wait: park})
		if err != nil {
			b.Fatal(err)
		}
		lat := make(chan time.Duration)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer c.Close()
			for {
				if _, err := c.Read(ctx, 1, func(m []byte) { lat <- since(m) }); err != nil {
					return
				}
			}
		}()
		measure(b, ps, lat)
		cancel()
		<-done
	})
	for _, n := range []int{1, 64, -64} {
		name := fmt.Sprint("set-", n)
		if n < 0 {
			name = fmt.Sprint("set-", -n, "-one") // every message to the same member
		}
		b.Run(name, func(b *testing.B) {
			rings, ps := waitsetRings(b, max(n, -n))
			if n < 0 {
				ps = ps[:1]
			}
			s := newSet(b, &waitset.Config{Wait: park}, rings)
			lat := make(chan time.Duration)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					if _, err := s.Read(ctx, 1, func(_ *waitset.Member, m []byte) { lat <- since(m) }); err != nil {
						return
					}
				}
			}()
			measure(b, ps, lat)
			cancel()
			<-done
			_ = s.Close()
		})
	}
}

// BenchmarkWaitSetWakeRatio measures, in one run and interleaved, the
// wake-up latency of a single parked ipc Consumer, of a parked set of 1
// ring and of two parked sets of 64 rings: the readers sleep at once, and
// each iteration writes one message to each (to the next member of the
// first set of 64, whose ring is then cold in the caches; always to the
// first member of the other, "set64-one"; in an order that rotates), each
// after a 200 µs pause so that its reader is asleep; and the same two sets
// of 64 over rings with flag bit 4 ("bell64", "bell64-one"), which the set
// sleeps on through one doorbell instead of 64 words (docs/waitset.md);
// and a control, "single64": 64 single parked Consumers, one goroutine
// each, each message to the next ring as for bell64, so that the cost of
// a cold ring (caches and TLB, the producer's side and the reader's) is
// measured apart from the set's. Metrics: p50 and p99 of each (ns), the
// ratios of each to the single Consumer's (the target: set of 64 within
// 1.2x), and bell64/single64 (the set's own cost, the cold ring's taken
// out). Interleaving puts all of them under the same load, which on a
// shared machine moves more than any of them.
func BenchmarkWaitSetWakeRatio(b *testing.B) {
	park := ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}
	since := func(msg []byte) time.Duration {
		return time.Duration(time.Now().UnixNano() - int64(binary.LittleEndian.Uint64(msg)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	type reader struct {
		name string
		ps   []*ipc.Producer
		lat  chan time.Duration
		ds   []time.Duration
	}
	one, pOne := waitsetRings(b, 1)
	c, err := one[0].Consumer(&ipc.ConsumerConfig{Wait: park})
	if err != nil {
		b.Fatal(err)
	}
	readers := []*reader{{name: "single", ps: pOne, lat: make(chan time.Duration)}}
	wg.Add(1)
	go func(lat chan<- time.Duration) {
		defer wg.Done()
		defer c.Close()
		for {
			if _, err := c.Read(ctx, 1, func(m []byte) { lat <- since(m) }); err != nil {
				return
			}
		}
	}(readers[0].lat)
	// The control: 64 single parked Consumers, one goroutine each, each
	// message to the next ring as for bell64, so that what a member ring
	// being cold in the caches and TLB costs (each message to another
	// ring, written by another producer, read by another goroutine) is
	// measured apart from the set.
	many, pMany := waitsetRings(b, 64)
	r64 := &reader{name: "single64", ps: pMany, lat: make(chan time.Duration)}
	readers = append(readers, r64)
	for _, ring := range many {
		c, err := ring.Consumer(&ipc.ConsumerConfig{Wait: park})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for {
				if _, err := c.Read(ctx, 1, func(m []byte) { r64.lat <- since(m) }); err != nil {
					return
				}
			}
		}()
	}
	for _, n := range []int{1, 64, -64, 1064, -1064} {
		bell := n > 1000 || n < -1000
		m, kind := max(n, -n), "set"
		if bell {
			m, kind = m-1000, "bell"
		}
		rings, ps := waitsetRingsCfg(b, m, ipc.Config{Capacity: 1 << 16, Doorbell: bell})
		s := newSet(b, &waitset.Config{Wait: park}, rings)
		defer s.Close()
		r := &reader{name: fmt.Sprint(kind, m), ps: ps, lat: make(chan time.Duration)}
		if n < 0 {
			r.name, r.ps = fmt.Sprint(kind, m, "-one"), ps[:1] // every message to its first member
		}
		readers = append(readers, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := s.Read(ctx, 1, func(_ *waitset.Member, m []byte) { r.lat <- since(m) }); err != nil {
					return
				}
			}
		}()
	}

	msg := make([]byte, 8)
	// Warm up: every producer wakes its reader once, so that each of the
	// doorbell rings' producers has mapped the doorbell (a producer opens
	// it at its first ring, not at each) before the measure.
	for _, r := range readers {
		for _, p := range r.ps {
			time.Sleep(200 * time.Microsecond)
			if err := p.Write(context.Background(), msg); err != nil {
				b.Fatal(err)
			}
			<-r.lat
		}
	}
	i := 0
	for b.Loop() {
		for k := range readers {
			r := readers[(i+k)%len(readers)]
			time.Sleep(200 * time.Microsecond) // the reader goes to sleep
			binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
			if err := r.ps[i%len(r.ps)].Write(context.Background(), msg); err != nil {
				b.Fatal(err)
			}
			r.ds = append(r.ds, <-r.lat)
		}
		i++
	}
	q := func(ds []time.Duration, p int) float64 { return float64(ds[len(ds)*p/100]) }
	for _, r := range readers {
		slices.Sort(r.ds)
		b.ReportMetric(q(r.ds, 50), r.name+"-p50-ns")
		b.ReportMetric(q(r.ds, 99), r.name+"-p99-ns")
		if r != readers[0] {
			b.ReportMetric(q(r.ds, 50)/q(readers[0].ds, 50), r.name+"/single-p50")
			b.ReportMetric(q(r.ds, 99)/q(readers[0].ds, 99), r.name+"/single-p99")
		}
	}
	// bell64 against its control: the set's cost with the cold ring's
	// taken out.
	by := map[string]*reader{}
	for _, r := range readers {
		by[r.name] = r
	}
	b.ReportMetric(q(by["bell64"].ds, 50)/q(r64.ds, 50), "bell64/single64-p50")
	b.ReportMetric(q(by["bell64"].ds, 99)/q(r64.ds, 99), "bell64/single64-p99")
}

// BenchmarkWaitSetBusy4 measures throughput with 4 busy rings, 64-byte
// messages, a producer goroutine writing to each as fast as it can: one
// set reading all 4 (Read of up to 256) against 4 ipc Consumers read by 4
// goroutines. Both sides wait with the default Hybrid. Metric: messages
// per second delivered, over all 4 rings; b.N messages per ring.
func BenchmarkWaitSetBusy4(b *testing.B) {
	const n = 4
	run := func(b *testing.B, consume func(rings []*ipc.Ring, per int) func()) {
		dir := b.TempDir()
		var rings []*ipc.Ring
		for i := range n {
			r, err := ipc.Create(filepath.Join(dir, fmt.Sprint("r", i)), ipc.Config{Capacity: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = r.Close() }()
			rings = append(rings, r)
		}
		per := b.N
		wait := consume(rings, per) // consumers start first
		var wg sync.WaitGroup
		msg := make([]byte, 64)
		b.ResetTimer()
		start := time.Now()
		for _, r := range rings {
			p, err := r.Producer(nil)
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer p.Close()
				for range per {
					if err := p.Write(context.Background(), msg); err != nil {
						panic(err)
					}
				}
			}()
		}
		wait()
		elapsed := time.Since(start)
		wg.Wait()
		b.ReportMetric(float64(n*per)/elapsed.Seconds(), "msgs/s")
	}
	b.Run("set", func(b *testing.B) {
		run(b, func(rings []*ipc.Ring, per int) func() {
			s := newSet(b, nil, rings)
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer s.Close()
				for got := 0; got < n*per; {
					k, err := s.Read(context.Background(), 256, func(*waitset.Member, []byte) {})
					if err != nil {
						panic(err)
					}
					got += k
				}
			}()
			return func() { <-done }
		})
	})
	b.Run("consumers", func(b *testing.B) {
		run(b, func(rings []*ipc.Ring, per int) func() {
			var wg sync.WaitGroup
			for _, r := range rings {
				c, err := r.Consumer(nil)
				if err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					for got := 0; got < per; {
						k, err := c.Read(context.Background(), 256, func([]byte) {})
						if err != nil {
							panic(err)
						}
						got += k
					}
				}()
			}
			return wg.Wait
		})
	})
}
