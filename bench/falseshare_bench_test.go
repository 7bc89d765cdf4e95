package bench_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// BenchmarkFalseSharing is the experiment behind the segment's 128-byte
// lines and the pads around the producer's and consumer's Go structs: two
// goroutines (two cores) each increment their own counter, 8, 64 or 128
// bytes apart, as a producer and a consumer update their own positions and
// counters. Only the distance changes; ns/op is per increment of the
// benchmark goroutine. Same line (8 B): every increment takes the line
// from the other core. 64 B: neighbouring lines, which an adjacent-line
// prefetcher may move in pairs. 128 B: the segment layout's spacing.
func BenchmarkFalseSharing(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs two procs")
	}
	// 256-byte aligned inside the buffer, so the distances mean lines.
	var buf [512]byte
	base := (256 - uintptr(unsafe.Pointer(&buf[0]))%256) % 256
	for _, dist := range []uintptr{8, 64, 128} {
		b.Run(fmt.Sprintf("apart=%d", dist), func(b *testing.B) {
			mine := (*atomic.Uint64)(unsafe.Pointer(&buf[base]))
			theirs := (*atomic.Uint64)(unsafe.Pointer(&buf[base+dist]))
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					for range 64 {
						theirs.Add(1)
					}
				}
			}()
			for b.Loop() {
				mine.Add(1)
			}
			stop.Store(true)
			wg.Wait()
		})
	}
}
