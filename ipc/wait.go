package ipc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/spin"
	"github.com/shmring/shmring/ring"
)

// policy is the wait loop's mode: what a producer does when a message does
// not fit, and how either side waits. The values are the ones stored in the
// segment's override words (ringctl policy), so they never change. A
// producer's policy is derived once from its ProducerConfig (Overflow,
// Full, Wait.Strategy); a consumer's from its Wait.Strategy; an operator's
// override in the segment replaces either from the next wait on.
type policy uint8

const (
	// pSpin busy-waits with a CPU pause instruction, yielding every 256.
	pSpin policy = 1
	// pDrop returns ErrFull at once, counted as a drop (producers only).
	pDrop policy = 2
	// pBackoff spins briefly, then yields, then sleeps from 20 µs doubling
	// to 1 ms. No futex: a sleeper is not woken early. An override only.
	pBackoff policy = 3
	// pYield calls sched_yield between attempts.
	pYield policy = 4
	// pPark sleeps on the side's futex word until woken.
	pPark policy = 5
	// pBlock was Park with the producer's own timeout; as an override it
	// now waits as Park, bounded by the caller's context.
	pBlock policy = 6
	// pHybrid spins, yields, then parks.
	pHybrid policy = 7
	// pOverflow hands a message that does not fit to the producer's route.
	pOverflow policy = 8
	// pDropOldest reclaims the oldest records (DropOldest rings).
	pDropOldest policy = 9
)

var policyNames = map[policy]string{pSpin: "spin", pDrop: "drop", pBackoff: "backoff", pYield: "yield", pPark: "park", pBlock: "block", pHybrid: "hybrid", pOverflow: "overflow", pDropOldest: "drop-oldest"}

// String returns the policy's name as ringctl policy prints it.
func (p policy) String() string {
	if s, ok := policyNames[p]; ok {
		return s
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// known reports whether p is a policy: the numbers are contiguous, and a
// comparison costs nothing in a wait loop, where a map lookup costs a hash.
func (p policy) known() bool { return p >= pSpin && p <= pDropOldest }

func (p policy) waits() bool {
	return p.known() && p != pDrop && p != pOverflow && p != pDropOldest
}

// errDeadlineRoom and errDeadlineData are a wait's context deadline
// passing (a producer's wait for room, a consumer's for data), whether
// the context said so or a check of the clock saw it first: one value
// each, so a producer dropping messages at a high rate allocates nothing.
// They match context.DeadlineExceeded.
var (
	errDeadlineRoom = fmt.Errorf("ipc: gave up waiting for room: the context's deadline passed: %w", context.DeadlineExceeded)
	errDeadlineData = fmt.Errorf("ipc: gave up waiting for data: the context's deadline passed: %w", context.DeadlineExceeded)
)

// errDeadline returns the side's deadline error.
func (s *waitSide) errDeadline() error {
	if s.consumer {
		return errDeadlineData
	}
	return errDeadlineRoom
}

// peerDeadError builds, once per endpoint, the error a wait returns when
// the other side has been gone for the peer timeout: it matches
// ErrPeerDead and says which ring, which side is gone, for how long, and
// what to do. Built at Producer() or Consumer(), so that a producer
// returning it for every message (the peerGone fast path) allocates
// nothing.
func peerDeadError(path string, consumer bool, timeout time.Duration) error {
	if consumer {
		return fmt.Errorf("ipc: %q: no producer for %v (Wait.PeerTimeout): start a producer, or raise Wait.PeerTimeout; "+
			"a producer that finished leaves this after its messages are delivered: %w", path, timeout, ErrPeerDead)
	}
	start := "start a consumer (ringctl recv " + path + ")"
	if strings.HasPrefix(path, "memfd:") {
		start = "start a consumer (Receive the ring in its process)" // no name ringctl could open
	}
	return fmt.Errorf("ipc: %q: no consumer for %v (Wait.PeerTimeout): %s or raise Wait.PeerTimeout: %w",
		path, timeout, start, ErrPeerDead)
}

// hookError is an error a wait hook returned to end a wait, wrapped: the
// wait returns it, and a producer does not count its message as dropped.
type hookError struct{ err error }

func (h hookError) Error() string { return "ipc: the wait hook ended the wait: " + h.err.Error() }
func (h hookError) Unwrap() error { return h.err }

// isHookError reports whether err is a wait hook's. It walks the chain by
// hand: errors.As would move its target to the heap, an allocation for
// every write that gives up.
func isHookError(err error) bool {
	for err != nil {
		if _, ok := err.(hookError); ok {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

const (
	spinsPerYield = 256
	backoffSpins  = 1024
	backoffYields = 64
	minSleep      = 20 * time.Microsecond
	maxSleep      = time.Millisecond
	// parkSlice bounds one futex sleep, so that a waiter re-checks its peer's
	// liveness at least this often; without membarrier it is the bound on a
	// missed wake-up and is much shorter.
	parkSlice         = 100 * time.Millisecond
	parkSliceFallback = time.Millisecond
	// firstSleep bounds the first sleep of a wait, which goes without the
	// barrier (park): the most a wake-up that the barrier would have
	// caught is late, the bound a missed wake-up has without membarrier
	// (parkSliceFallback). Long against a round trip through a futex (5 to
	// 10 µs here, 20 to 100 µs at the 99th percentile on this loaded
	// machine: a first sleep that runs out costs a wake-up, the barrier and
	// a second sleep), short against the park slice.
	firstSleep = parkSliceFallback
	// firstSpins bounds the re-tries before the first sleep (firstSpin):
	// a pause (about 30 ns on this machine's Xeon) and a re-try each,
	// about 0.4 µs in all: about what a store takes to leave a store
	// buffer (a cache-line transfer, 100 to 550 ns here), short against a
	// round trip through a futex. Longer costs the round trip's median
	// (a woken peer placed on the waiter's core waits out the spin: 16
	// and 32 measured worse, docs/benchmarks.md "The park round trip").
	firstSpins = 8
)

// waitSide is one side's view of a wait: the words it sleeps on, the
// override it follows, how it tests its peer.
type waitSide struct {
	wp          ring.WaitLine
	mode        *atomic.Uint32 // the control word: a policy that overrides ours
	peerAlive   func() bool
	peerTimeout time.Duration
	hybridSpins int
	hybridYield int
	consumer    bool // the consumer clears its parked flag when done
	// errPeer is what a wait returns when the peer has been gone for
	// peerTimeout: ErrPeerDead wrapped with the ring and what to do
	// (peerDeadError), built once with the endpoint; nil: ErrPeerDead.
	errPeer error
	// peerGone (producers only) is set when a wait returned ErrPeerDead and
	// cleared when a wait finds the consumer back: while it is set, a wait
	// that finds no consumer returns ErrPeerDead at once instead of waiting
	// out the peer timeout again for every message.
	peerGone bool
	// hook, if set, is asked at each check whether to go on (Wait.Hook).
	hook  func(WaitInfo) error
	depth func() uint64
	// sliceCap, if set, bounds a sleep: the consumer must wake to check a
	// blocked MPSC reservation's owner even if nobody wakes it.
	sliceCap func() time.Duration
	// idle, if set (consumers), checks the segment for damage that a
	// consumer finding nothing to read would not see otherwise (a
	// truncated file, its own position word overwritten): called when a
	// sleep runs out with nothing read (park), and every few milliseconds
	// while a wait spins, yields or backs off; never on a read or a
	// wake-up. It looks at most once per parkSlice. Its error ends the
	// wait.
	idle func() error
	// first registers a first sleep with the watch (firstsleep.go).
	first firstSleeper
	// closed is the endpoint's closed flag: Ring.Close sets it, bumps the
	// futex words and wakes; the wait checks it at every step and before
	// every sleep, and returns errShut.
	closed *atomic.Bool
}

// errShut ends a wait whose endpoint was closed by Ring.Close; the caller
// returns its own ErrClosed without touching the segment again.
var errShut = fmt.Errorf("ipc: closed while waiting: %w", ErrClosed)

// errNilContext is returned for a nil context.Context.
var errNilContext = fmt.Errorf("ipc: the context is nil; pass context.Background() to wait without a deadline: %w", errs.ErrInvalid)

// shut reports whether Ring.Close has shut the waiting endpoint.
func (s *waitSide) shut() bool { return s.closed != nil && s.closed.Load() }

// effective returns the policy to wait with: the segment's override, if an
// operator set one that applies to this side, else p.
func (s *waitSide) effective(p policy) policy {
	o := policy(s.mode.Load())
	if !o.known() || (!o.waits() && s.consumer) {
		return p
	}
	return o
}

// wait runs policy until try reports done, ctx ends, or the peer is gone.
// try is the non-blocking operation (a write or a read); it is called
// between waiting steps and, when parking, after the waiter has announced
// itself, so no wake-up is missed.
//
// It returns the busy-wait iterations and sched_yield calls it made, and
// ErrFull if an operator switched a waiting producer to Drop meanwhile.
func (s *waitSide) wait(ctx context.Context, policy policy, deadline time.Time, try func() (bool, error)) (spins, yields uint64, err error) {
	// A consumer that announced itself (park) takes its announcement back
	// when the wait ends, if no waker did. Only then: an unconditional store
	// would fence on every wait and take the line the producers check after
	// every message away from them.
	announced := false
	defer func() {
		if announced && s.wp.Parked.Load() != 0 {
			s.wp.Parked.Store(0)
		}
	}()
	// When the wait began, for the peer check and the hook: read at the
	// first check, not on entry, so that a short spin reads no clock.
	var start time.Time
	var absentSince time.Time
	var sleep time.Duration
	var stopWake func() bool
	var woken chan struct{} // closed when the cancellation's wake has run
	hookAttempt := 0
	slept := false // a park has run in this wait: the next skips the short first sleep
	defer func() {
		// A wake already started by the cancellation touches the
		// segment: wait for it, so that it never runs after the wait
		// returned and its Ring was closed and unmapped (it did: SIGSEGV).
		if stopWake != nil && !stopWake() {
			<-woken
		}
	}()
	// checkPeer is called every few milliseconds of waiting at most;
	// idle: the wait is not parking (park makes its own idle checks).
	checkPeer := func(now time.Time, idle bool) error {
		if start.IsZero() {
			start = now
		}
		if err := s.ctxErr(ctx); err != nil {
			return err
		}
		if !deadline.IsZero() && !now.Before(deadline) {
			return s.errDeadline()
		}
		if s.hook != nil {
			if err := s.hook(WaitInfo{Attempt: hookAttempt, Waited: now.Sub(start), Depth: s.depth()}); err != nil {
				if !s.consumer && errors.Is(err, ErrFull) {
					return ErrFull // drop the message
				}
				return hookError{err}
			}
		}
		if now.Sub(start) < 10*time.Millisecond {
			return nil
		}
		if idle && s.idle != nil {
			if err := s.idle(); err != nil { // at most one look per parkSlice
				return err
			}
		}
		if s.peerAlive() {
			absentSince = time.Time{}
		} else if absentSince.IsZero() {
			absentSince = now
		} else if now.Sub(absentSince) >= s.peerTimeout {
			return s.peerDead()
		}
		return nil
	}
	if s.peerGone {
		if !s.peerAlive() {
			return 0, 0, s.peerDead()
		}
		s.peerGone = false
	}
	defer func() {
		if !s.consumer && err != nil && err == s.peerDead() {
			s.peerGone = true
		}
	}()
	for n := 1; ; n++ {
		if s.shut() {
			return spins, yields, errShut
		}
		hookAttempt = n
		policy := s.effective(policy)
		phase := policy
		if policy == pHybrid {
			switch {
			case n <= s.hybridSpins:
				phase = pSpin
			case n <= s.hybridSpins+s.hybridYield:
				phase = pYield
			default:
				phase = pPark
			}
		}
		switch phase {
		case pDrop, pOverflow, pDropOldest:
			return spins, yields, ErrFull
		case pSpin:
			spins++
			spin.Pause()
			if n%spinsPerYield == 0 {
				yields++
				spin.Yield()
				if err := checkPeer(time.Now(), true); err != nil {
					return spins, yields, err
				}
			}
		case pYield:
			yields++
			spin.Yield()
			if n%16 == 0 {
				if err := checkPeer(time.Now(), true); err != nil {
					return spins, yields, err
				}
			}
		case pBackoff:
			switch {
			case n < backoffSpins:
				spins++
				spin.Pause()
			case n < backoffSpins+backoffYields:
				yields++
				spin.Yield()
			default:
				sleep = min(max(2*sleep, minSleep), maxSleep)
				time.Sleep(sleep)
			}
			if n%spinsPerYield == 0 || n >= backoffSpins {
				if err := checkPeer(time.Now(), true); err != nil {
					return spins, yields, err
				}
			}
		default: // pPark, pBlock (bounded by the caller's context)
			if stopWake == nil && ctx.Done() != nil {
				// Cancellation must reach a sleeper: bump and wake.
				woken = make(chan struct{})
				done := woken
				stopWake = context.AfterFunc(ctx, func() {
					defer close(done)
					if testBeforeContextWake != nil {
						testBeforeContextWake()
					}
					s.wp.Seq.Add(1)
					_, _ = futex.Wake(s.wp.Seq, math.MaxInt32)
				})
			}
			announced = announced || s.consumer
			done, err := s.park(ctx, deadline, try, !slept)
			slept = true
			if done || err != nil {
				return spins, yields, err
			}
			if err := checkPeer(time.Now(), false); err != nil {
				return spins, yields, err
			}
		}
		if done, err := try(); done || err != nil {
			return spins, yields, err
		}
	}
}

// peerDead returns the error for a peer gone for the peer timeout.
func (s *waitSide) peerDead() error {
	if s.errPeer != nil {
		return s.errPeer
	}
	return ErrPeerDead
}

// ctxErr returns the side's deadline error (errDeadline, matching
// context.DeadlineExceeded; no allocation) when the context's deadline
// passed, the context's error when it was cancelled, nil while it runs.
func (s *waitSide) ctxErr(ctx context.Context) error {
	select {
	case <-ctx.Done():
		if err := ctx.Err(); err == context.DeadlineExceeded {
			return s.errDeadline()
		} else {
			return err
		}
	default:
		return nil
	}
}
