package bench_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shmring/shmring/ring"
)

func newRing(b *testing.B, capacity uint64) (*ring.Producer, *ring.Consumer) {
	b.Helper()
	cfg := ring.Config{Capacity: capacity}
	size, err := ring.Size(cfg)
	if err != nil {
		b.Fatal(err)
	}
	region := make([]byte, size)
	if err := ring.Format(region, cfg); err != nil {
		b.Fatal(err)
	}
	r, err := ring.Attach(region)
	if err != nil {
		b.Fatal(err)
	}
	p, _ := r.NewProducer()
	c, _ := r.NewConsumer()
	return p, c
}

// The single-goroutine benchmarks measure the cost of each operation with
// the ring's memory in one core's cache: write 64 and read them back.
const batch = 64

func BenchmarkWrite64(b *testing.B) {
	p, c := newRing(b, 1<<16)
	msg := make([]byte, 64)
	drain := func([]byte) {}
	b.SetBytes(64 * batch)
	b.ReportAllocs()
	for b.Loop() {
		for range batch {
			if err := p.TryWrite(msg); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := c.ReadBatch(batch, drain); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
}

func BenchmarkClaimCommit64(b *testing.B) {
	p, c := newRing(b, 1<<16)
	drain := func([]byte) {}
	b.SetBytes(64 * batch)
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			buf, err := p.Claim(64)
			if err != nil {
				b.Fatal(err)
			}
			buf[0] = byte(i)
			_ = p.Commit()
		}
		_, _ = c.ReadBatch(batch, drain)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
}

func BenchmarkWriteBatch64(b *testing.B) {
	p, c := newRing(b, 1<<16)
	msgs := make([][]byte, batch)
	for i := range msgs {
		msgs[i] = make([]byte, 64)
	}
	drain := func([]byte) {}
	b.SetBytes(64 * batch)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := p.WriteBatch(msgs); err != nil || n != batch {
			b.Fatal(n, err)
		}
		_, _ = c.ReadBatch(batch, drain)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
}

// BenchmarkSPSCGoroutines64 moves 64-byte messages between two goroutines
// (two cores when GOMAXPROCS allows): the producer runs the benchmark loop,
// the consumer drains in batches of 256.
func BenchmarkSPSCGoroutines64(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs two procs")
	}
	p, c := newRing(b, 1<<20)
	msg := make([]byte, 64)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		drain := func([]byte) {}
		for !stop.Load() {
			_, _ = c.ReadBatch(256, drain)
		}
		for n, _ := c.ReadBatch(256, drain); n > 0; n, _ = c.ReadBatch(256, drain) {
		}
	}()
	b.SetBytes(64)
	b.ReportAllocs()
	for b.Loop() {
		for p.TryWrite(msg) != nil {
		}
	}
	stop.Store(true)
	wg.Wait()
}

// BenchmarkChan64 is the peer of BenchmarkSPSCGoroutines64: a buffered
// channel of 64-byte arrays between two goroutines.
func BenchmarkChan64(b *testing.B) {
	ch := make(chan [64]byte, 16384)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range ch {
		}
	}()
	var m [64]byte
	b.SetBytes(64)
	b.ReportAllocs()
	for b.Loop() {
		ch <- m
	}
	close(ch)
	wg.Wait()
}
