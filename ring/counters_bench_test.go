package ring_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shmring/shmring/ring"
)

// BenchmarkCounters measures the SPSC hot path with and without the
// message and byte counters, in one run (issue 5: they must cost under 5%):
//
//	go test -run '^$' -bench Counters -count 10 ./ring
func BenchmarkCounters(b *testing.B) {
	for _, mode := range []string{"on", "off"} {
		b.Run("single/"+mode, func(b *testing.B) {
			p, c, _ := newRing(b, 1<<16, 1<<10)
			if mode == "off" {
				ring.DisableCounters(p, c)
			}
			msg := make([]byte, 64)
			drain := func([]byte) {}
			b.SetBytes(64 * 64)
			for b.Loop() {
				for range 64 {
					_ = p.TryWrite(msg)
				}
				_, _ = c.ReadBatch(64, drain)
			}
		})
		b.Run("goroutines/"+mode, func(b *testing.B) {
			if runtime.GOMAXPROCS(0) < 2 {
				b.Skip("needs two procs")
			}
			p, c, _ := newRing(b, 1<<20, 1<<10)
			if mode == "off" {
				ring.DisableCounters(p, c)
			}
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
			}()
			b.SetBytes(64)
			for b.Loop() {
				for p.TryWrite(msg) != nil {
				}
			}
			stop.Store(true)
			wg.Wait()
		})
	}
}
