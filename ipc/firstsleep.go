// The first sleep's bound, kept by one goroutine of the process instead of
// a kernel timer on every sleep.

package ipc

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/futex"
)

// A first sleep (park) goes without the barrier, so it must not last
// longer than firstSleep: a wake-up the barrier would have caught comes at
// most that late. A FUTEX_WAIT timeout bounded it, which arms a kernel
// timer at each sleep and cancels it at each wake-up: on this project's
// virtual machine that timer, the earliest the CPU has, is reprogrammed
// twice per sleep (each a write to the timer's register: an exit to the
// hypervisor): 8 to 16% of a park round trip, most of what it cost over a
// raw futex's (docs/benchmarks.md, "The first sleep's bound kept without a
// timer per sleep"). Now a first sleep of the whole
// firstSleep has no timeout: it registers here, and firstWatch, a
// goroutine that ticks while any sleep is registered, wakes (FUTEX_WAKE on
// its word) every registered sleep older than firstSleep, marking it
// expired so that the sleeper takes the path a timeout took. The watch
// looks about every millisecond (firstWatchPeriod; the runtime rounds a
// shorter sleep up to one), so a first sleep nobody wakes lasts 1 to about
// 2 ms: the bound on a raced wake-up, against exactly 1 ms with the
// timeout. It is later only if the Go scheduler cannot run the watch
// (every P busy, or held by a system call until the runtime's monitor
// takes it back: up to about 20 ms). A sleep shortened below firstSleep
// (a deadline, the consumer's slice cap, a test's slice) keeps its
// FUTEX_WAIT timeout: the watch would overshoot it.
//
// Costs, besides the goroutine: a lock and a clock read a first sleep
// (one lock for the whole process: many endpoints parking at high rates
// share it), and the watch's wake is a FUTEX_WAKE on the shared word, so
// that every other sleeper on it, in any process (MPSC producers waiting
// for room on line 6), wakes too, re-checks and sleeps again, on the
// barrier path (docs/layout.md says so): at most once a millisecond per
// first sleep that runs out, none while wake-ups come within 1 ms.

// firstSleeper is a waiting side's registration: the word it sleeps on
// and when its sleep must end. It lives in the waitSide (no allocation per
// sleep).
type firstSleeper struct {
	addr    *atomic.Uint32
	until   time.Time // monotonic
	expired bool      // the watch woke it: the sleep "ran out" (under firstWatch.mu)
	slot    int       // its place in firstWatch.list plus 1; 0: not registered
}

// firstWatchPeriod is how often the watch looks at the registered sleeps:
// a time.Sleep under a millisecond is rounded up to one by the runtime's
// timers (epoll_wait's millisecond), so asking for less buys nothing.
const firstWatchPeriod = firstSleep

var firstWatch struct {
	mu      sync.Mutex
	list    []*firstSleeper
	blocked bool          // the watch waits for a registration (kick), not ticking
	kick    chan struct{} // a token: a registration while it was blocked; nil until the watch's goroutine (it never ends) starts
}

// register adds f, sleeping on addr until until, to the watch, starting
// its goroutine if it is not running.
func (f *firstSleeper) register(addr *atomic.Uint32, until time.Time) {
	w := &firstWatch
	w.mu.Lock()
	f.addr, f.until, f.expired = addr, until, false
	w.list = append(w.list, f)
	f.slot = len(w.list)
	switch {
	case w.kick == nil:
		w.kick = make(chan struct{}, 1)
		go watchFirstSleeps(w.kick)
	case w.blocked:
		w.blocked = false
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	w.mu.Unlock()
}

// deregister removes f from the watch and reports whether the watch woke
// it. After it returns the watch never touches f's word again (the
// mapping may go).
func (f *firstSleeper) deregister() (expired bool) {
	w := &firstWatch
	w.mu.Lock()
	if f.slot > 0 {
		i, last := f.slot-1, len(w.list)-1
		w.list[i] = w.list[last]
		w.list[i].slot = i + 1
		w.list[last] = nil
		w.list = w.list[:last]
		f.slot = 0
	}
	expired = f.expired
	w.mu.Unlock()
	return expired
}

// watchFirstSleeps is the watch's goroutine: every firstWatchPeriod it
// wakes the registered sleeps whose time is up (under the lock, so that
// none is woken after it deregistered); when it finds none registered it
// waits for the next registration's kick instead of ticking, so that an
// idle process costs nothing (the goroutine stays, blocked, for the
// process's life).
func watchFirstSleeps(kick <-chan struct{}) {
	w := &firstWatch
	for {
		time.Sleep(firstWatchPeriod)
		w.mu.Lock()
		if len(w.list) == 0 {
			w.blocked = true
			w.mu.Unlock()
			<-kick
			continue
		}
		now := time.Now()
		for _, f := range w.list {
			if !now.Before(f.until) {
				f.expired = true
				_, _ = futex.Wake(f.addr, math.MaxInt32)
				firstWatchWakes.Add(1)
			}
		}
		w.mu.Unlock()
	}
}

// firstWatchWakes counts the sleeps the watch woke (tests).
var firstWatchWakes atomic.Uint64

// firstWait is the first sleep on s's word (park): at most slice, through
// the watch if slice is the whole firstSleep, with a FUTEX_WAIT timeout if
// it is shorter (or a test asks for the timer). futex.ErrTimeout: it ran
// out unwoken (or the watch woke it as a wake-up came: the caller's
// re-try tells).
func (s *waitSide) firstWait(seq uint32, slice time.Duration) error {
	if slice < firstSleep || testFirstSleepTimer {
		return futex.Wait(s.wp.Seq, seq, slice)
	}
	s.first.register(s.wp.Seq, time.Now().Add(slice))
	err := futex.Wait(s.wp.Seq, seq, 0)
	if s.first.deregister() && err == nil {
		return futex.ErrTimeout
	}
	return err
}

// testFirstSleepTimer makes every first sleep take a FUTEX_WAIT timeout,
// as before the watch (tests, benchmarks' A/B).
var testFirstSleepTimer bool
