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
	r := attachNew(b, ring.Config{Capacity: capacity})
	p, _ := r.NewProducer()
	c, _ := r.NewConsumer()
	return p, c
}

// attachNew formats a region in memory for cfg and attaches to it.
func attachNew(b *testing.B, cfg ring.Config) *ring.Ring {
	b.Helper()
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
	return r
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

// BenchmarkMPSC64 is BenchmarkWrite64 and BenchmarkWriteBatch64 on an MPSC
// ring (one producer slot): a reservation (intent and compare-and-swap) per
// write, or per run of a batch, and the consumer's zeroing.
func BenchmarkMPSC64(b *testing.B) {
	r := attachNew(b, ring.Config{Kind: ring.MPSC, Capacity: 1 << 16, Slots: 4})
	p, err1 := r.NewSlotProducer(0)
	c, err2 := r.NewConsumer()
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	msgs := make([][]byte, batch)
	for i := range msgs {
		msgs[i] = make([]byte, 64)
	}
	drain := func([]byte) {}
	for _, mode := range []string{"write", "batch"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(64 * batch)
			b.ReportAllocs()
			for b.Loop() {
				if mode == "batch" {
					if n, err := p.WriteBatch(msgs); err != nil || n != batch {
						b.Fatal(n, err)
					}
				} else {
					for _, m := range msgs {
						if err := p.TryWrite(m); err != nil {
							b.Fatal(err)
						}
					}
				}
				if n, err := c.ReadBatch(batch, drain); err != nil || n != batch {
					b.Fatal(n, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
		})
	}
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

// BenchmarkDropOldest prices what a drop-oldest ring's consumer pays
// (a copy and a release per message: a compare-and-swap in SPSC, the
// release lock and its zeroing in MPSC) against the plain ring of the same
// kind, in one goroutine: write 64 messages of 64 B, read them back. The
// "full" cases keep the ring full, so that every write reclaims one
// message first.
func BenchmarkDropOldest(b *testing.B) {
	for _, tc := range []struct {
		name      string
		kind      ring.Kind
		overwrite bool
	}{
		{"spsc/plain", ring.SPSC, false},
		{"spsc/drop-oldest", ring.SPSC, true},
		{"mpsc/plain", ring.MPSC, false},
		{"mpsc/drop-oldest", ring.MPSC, true},
	} {
		cfg := ring.Config{Kind: tc.kind, Capacity: 1 << 16, Overwrite: tc.overwrite}
		if tc.kind == ring.MPSC {
			cfg.Slots = 1
		}
		setup := func(b *testing.B) (*ring.Producer, *ring.Consumer) {
			size, _ := ring.Size(cfg)
			region := make([]byte, size)
			if err := ring.Format(region, cfg); err != nil {
				b.Fatal(err)
			}
			r, _ := ring.Attach(region)
			var p *ring.Producer
			if tc.kind == ring.MPSC {
				p, _ = r.NewSlotProducer(0)
			} else {
				p, _ = r.NewProducer()
			}
			c, _ := r.NewConsumer()
			return p, c
		}
		b.Run(tc.name, func(b *testing.B) {
			p, c := setup(b)
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
				if n, err := c.ReadBatch(batch, drain); err != nil || n != batch {
					b.Fatal(n, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
		})
		if !tc.overwrite {
			continue
		}
		b.Run(tc.name+"/full", func(b *testing.B) {
			p, _ := setup(b)
			msg := make([]byte, 64)
			for p.TryWrite(msg) == nil {
			}
			b.SetBytes(64)
			b.ReportAllocs()
			for b.Loop() {
				if k, err := p.TryWriteOverwrite(msg); err != nil || k != 1 {
					b.Fatal(k, err)
				}
			}
		})
	}
}
