package bench_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shmring/shmring/ipc"
)

// spin is how both sides of the spinning benchmarks wait.
var spin = ipc.Wait{Strategy: ipc.Spin}

// BenchmarkIPCRoundTrip ping-pongs a 64-byte message between two goroutines
// through two ipc rings with both sides spinning: the whole public path of
// a round trip (write, wait, read, callback), in one process. It caught a
// wait loop that stored to the consumer's wait line on every exit, which
// cost a fenced store and a line transfer per message (about 900 ns a round
// trip here, 215 ns without).
func BenchmarkIPCRoundTrip(b *testing.B) {
	dir := b.TempDir()
	ring := func(name string) *ipc.Ring {
		r, err := ipc.Create(filepath.Join(dir, name), ipc.Config{Capacity: 1 << 16})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		return r
	}
	r1, r2 := ring("ping"), ring("pong")
	p1, err1 := r1.Producer(&ipc.ProducerConfig{Wait: spin})
	c1, err2 := r1.Consumer(&ipc.ConsumerConfig{Wait: spin})
	p2, err3 := r2.Producer(&ipc.ProducerConfig{Wait: spin})
	c2, err4 := r2.Consumer(&ipc.ConsumerConfig{Wait: spin})
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	done := make(chan struct{})
	go func() { // the echoer: a message starting with 0xff ends it
		defer close(done)
		buf := make([]byte, 64)
		for {
			if _, err := c1.Read(ctx, 1, func(m []byte) { copy(buf, m) }); err != nil || buf[0] == 0xff {
				return
			}
			if err := p2.Write(ctx, buf); err != nil {
				return
			}
		}
	}()
	msg := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := p1.Write(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := c2.Read(ctx, 1, func([]byte) {}); err != nil {
			b.Fatal(err)
		}
	}
	msg[0] = 0xff
	_ = p1.Write(ctx, msg)
	<-done
}

// BenchmarkIPCGoroutines64 moves 64-byte messages between two goroutines
// through the public API (Write waiting with Spin, Read of up to 256 with a
// spinning wait): the in-process use of a ring, where the producer's and
// the consumer's Go structs share one heap.
func BenchmarkIPCGoroutines64(b *testing.B) {
	r, err := ipc.Create(filepath.Join(b.TempDir(), "ring"), ipc.Config{Capacity: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	p, err1 := r.Producer(&ipc.ProducerConfig{Wait: spin})
	c, err2 := r.Consumer(&ipc.ConsumerConfig{Wait: spin})
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	ctx := context.Background()
	done := make(chan struct{})
	go func() { // a message starting with 0xff ends it
		defer close(done)
		stop := false
		for !stop {
			if _, err := c.Read(ctx, 256, func(m []byte) { stop = stop || m[0] == 0xff }); err != nil {
				return
			}
		}
	}()
	msg := make([]byte, 64)
	b.SetBytes(64)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Write(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	msg[0] = 0xff
	_ = p.Write(ctx, msg)
	<-done
}

// BenchmarkIPCWrite64 is BenchmarkWrite64 through the public API: one
// goroutine writes 64 messages with Producer.Write and reads them back
// with one Consumer.TryRead, so it measures what the ipc layer adds to
// the ring's operations (closed checks, concurrency guards, the wake test)
// without a second core's noise.
func BenchmarkIPCWrite64(b *testing.B) {
	r, err := ipc.Create(filepath.Join(b.TempDir(), "ring"), ipc.Config{Capacity: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	p, err1 := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	c, err2 := r.Consumer(nil)
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	ctx := context.Background()
	msg := make([]byte, 64)
	drain := func([]byte) {}
	b.SetBytes(64 * batch)
	b.ReportAllocs()
	for b.Loop() {
		for range batch {
			if err := p.Write(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := c.TryRead(batch, drain); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
}
