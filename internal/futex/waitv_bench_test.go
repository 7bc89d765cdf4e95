package futex

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BenchmarkWaitVWake measures what a futex_waitv sleep on n words costs
// the wake-up of one of them, as a wait set of n-1 rings pays it: the time
// from a waker's stamp (just before its bump and FUTEX_WAKE of word 0) to
// the sleeper's return. Sleepers on 1, 2, 17, 65 and 128 words sleep at
// once and are woken in turn (interleaved: one load for all), each word on
// a page of its own of a shared mapping (as the rings' words are, one
// segment each). 1 word is a plain consumer's sleep. Metrics: p50 of each
// in ns, and its ratio to 1 word's. The difference is the kernel's: it
// keys, queues and, once woken, unqueues every word.
func BenchmarkWaitVWake(b *testing.B) {
	if !WaitVAvailable() {
		b.Skip("futex_waitv unavailable")
	}
	const page = 4096
	type sleeper struct {
		n     int
		words []*atomic.Uint32
		lat   chan time.Duration
		ds    []time.Duration
	}
	var stamp atomic.Int64
	stop := make(chan struct{})
	var sleepers []*sleeper
	for _, n := range []int{1, 2, 17, 65, 128} {
		mem, err := unix.Mmap(-1, 0, n*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Munmap(mem)
		sl := &sleeper{n: n, words: make([]*atomic.Uint32, n), lat: make(chan time.Duration)}
		for i := range sl.words {
			sl.words[i] = (*atomic.Uint32)(unsafe.Pointer(&mem[i*page]))
		}
		sleepers = append(sleepers, sl)
		go func() {
			var v Vec
			for {
				v.Reset()
				for _, w := range sl.words {
					v.Add(w, w.Load())
				}
				select {
				case <-stop:
					return
				default:
				}
				if i, err := v.Wait(time.Second); err == nil && i == 0 {
					sl.lat <- time.Duration(time.Now().UnixNano() - stamp.Load())
				}
			}
		}()
	}
	defer func() {
		close(stop)
		for _, sl := range sleepers {
			sl.words[0].Add(1)
			_, _ = Wake(sl.words[0], 1)
		}
	}()
	for b.Loop() {
		for _, sl := range sleepers {
			for {
				time.Sleep(100 * time.Microsecond) // the sleeper goes to sleep
				stamp.Store(time.Now().UnixNano())
				sl.words[0].Add(1)
				if k, _ := Wake(sl.words[0], 1); k == 1 {
					break // it slept: a wake-up measured
				}
			}
			sl.ds = append(sl.ds, <-sl.lat)
		}
	}
	for _, sl := range sleepers {
		slices.Sort(sl.ds)
		b.ReportMetric(float64(sl.ds[len(sl.ds)/2]), fmt.Sprint("words", sl.n, "-p50-ns"))
		if sl != sleepers[0] {
			b.ReportMetric(float64(sl.ds[len(sl.ds)/2])/float64(sleepers[0].ds[len(sleepers[0].ds)/2]), fmt.Sprint("words", sl.n, "/1-p50"))
		}
	}
}
