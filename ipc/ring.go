package ipc

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// Ring is a ring in a shared-memory segment, open in this process.
//
// Concurrency: a Ring's methods are safe for concurrent use by any number
// of goroutines, Close included: Close waits for the methods in progress
// (Stats, Producer, Consumer, Share, the operator tools of package ops)
// to return, and after it every method
// that reads the segment returns ErrClosed. The Producer and Consumer made
// from a Ring have contracts of their own (see their docs): each is used by
// one goroutine at a time.
//
// Close the Producer and Consumer before their Ring, from the goroutines
// that use them. Ring.Close closes any still open, and must not run while
// another goroutine is inside one of their methods, with one exception:
// a call waiting for room or data (a Write on a full ring, a Read on an
// empty one) is woken and returns ErrClosed, and Close waits for it to
// return before it unmaps the segment. A call in the middle of a write or
// read when Close unmaps the segment would crash the process (SIGSEGV):
// -race builds panic in Close instead, naming the call.
type Ring struct {
	seg *shm.Segment
	r   *ring.Ring

	watchAlive func(slot int, alive bool) // test only: sees ring's SlotAlive questions (WatchLiveness)

	// life keeps the mapping alive under the Ring's methods (and the
	// Producer's and Consumer's that any goroutine may call): each holds it
	// shared (enter, leave) for its whole run; Close takes it exclusively
	// to set closed, so no method is reading the segment when Close goes on
	// to unmap it, and none starts after. Never held twice by one goroutine
	// (a writer waiting would deadlock it): methods call each other's
	// unexported halves.
	life   sync.RWMutex
	closed atomic.Bool // set under life held exclusively

	// waiters counts Producer and Consumer calls waiting for room or data
	// (beginWait, endWait); Close wakes them and waits for zero before it
	// unmaps. An endpoint increments it, then loads its closed flag; Close
	// stores every endpoint's flag, then loads it: one of the two sees the
	// other (sequentially consistent atomics).
	waiters atomic.Int32

	mu        sync.Mutex // guards endpoints
	endpoints map[endpoint]struct{}
}

// endpoint is a Producer or Consumer as its Ring closes it: shut marks it
// closed (its calls return ErrClosed from then on, a waiting one is woken
// by Close), closeFromRing releases it once no call waits any more.
type endpoint interface {
	shut()
	closeFromRing() error
	guard() (kind string, g *useGuard)
}

// Create makes a new ring segment named name (a bare name lives in
// /dev/shm, or $SHMRING_DIR, or WithDir's directory; a name with a slash is
// a path) as cfg says, and opens it. The segment appears under its name
// only once fully initialised. It fails with [io/fs.ErrExist] if the name is
// taken, with shm.ErrBadName if the name is not printable (a control,
// format or invisible character, invalid UTF-8), and with
// [io/fs.ErrInvalid] for a Config that cannot be made or WithReadOnly.
// With cfg.Memfd the ring is an anonymous memfd instead, which name only
// labels; share it with [Ring.Share].
func Create(name string, cfg Config, opts ...Option) (*Ring, error) {
	o := collect(opts)
	if o.readOnly {
		return nil, fmt.Errorf("ipc: create %q: a ring cannot be created read-only; open it with WithReadOnly once made: %w", name, errs.ErrInvalid)
	}
	rc, err := cfg.ringConfig()
	if err != nil {
		return nil, fmt.Errorf("ipc: create %q: %w", name, err)
	}
	size, err := ring.Size(rc)
	if err != nil {
		return nil, fmt.Errorf("ipc: create %q: %w: %w", name, err, errs.ErrInvalid)
	}
	init := func(body []byte) error { return initBody(body, rc, cfg) }
	var seg *shm.Segment
	if cfg.Memfd {
		seg, err = shm.CreateMemfd(name, size, init)
	} else {
		if cfg.Mode != 0 {
			o.shm = append(o.shm, shm.Mode(cfg.Mode))
		}
		seg, err = shm.Create(name, size, init, o.shm...)
	}
	if err != nil {
		return nil, err
	}
	return attach(seg)
}

// initBody formats a ring in a new segment's body with the Config's levels.
func initBody(body []byte, rc ring.Config, cfg Config) error {
	if err := ring.Format(body, rc); err != nil {
		return err
	}
	if cfg.HighWater == 0 && cfg.LowWater == 0 && cfg.TargetDelay == 0 {
		return nil
	}
	r, err := ring.Attach(body)
	if err != nil {
		return err
	}
	if err := r.SetTargetDelay(cfg.TargetDelay, cfg.DelayInterval); err != nil {
		return fmt.Errorf("%w: %w", err, errs.ErrInvalid)
	}
	if err := r.SetPressureLevels(cfg.HighWater, cfg.LowWater); err != nil {
		return fmt.Errorf("%w: %w", err, errs.ErrInvalid)
	}
	return nil
}

// Open opens an existing ring segment, validating its header and ring
// descriptor before it uses anything in it; see shm.Open for the checks
// made before anything is mapped. It fails with [io/fs.ErrNotExist] if there
// is no such ring, [io/fs.ErrPermission] if it may not be opened (or its
// owner is another user: see WithTrustOwner), [ErrIncompatible] or
// [ErrCorrupt] if it is not a ring this build can use.
func Open(name string, opts ...Option) (*Ring, error) {
	o := collect(opts)
	seg, err := shm.Open(name, o.shm...)
	if err != nil {
		return nil, err
	}
	return attach(seg)
}

func attach(seg *shm.Segment) (*Ring, error) {
	ir := &Ring{seg: seg, endpoints: map[endpoint]struct{}{}}
	r, err := ring.AttachWithLiveness(seg.Body(), liveness{ir})
	if err != nil {
		_ = seg.Close()
		return nil, fmt.Errorf("ipc: %q: %w", seg.Path(), err)
	}
	registerBarrier()
	ir.r = r
	return ir, nil
}

// Remove unlinks a ring segment (opts: WithDir). Processes that have it
// open keep using it until they close it; the memory is freed when the last
// one does. It fails with [io/fs.ErrNotExist] if there is no such ring.
func Remove(name string, opts ...Option) error {
	return shm.Remove(name, collect(opts).shm...)
}

// Path returns the segment's file path.
func (r *Ring) Path() string { return r.seg.Path() }

// depth is the ring's depth in bytes now.
func (r *Ring) depth() uint64 { return r.r.Stats().Depth }

// liveness answers package ring's recovery (the consumer skipping a dead
// producer's reservation; a drop-oldest ring's release lock displacing a
// dead holder) from the role and slot locks.
type liveness struct{ r *Ring }

func (l liveness) SlotAlive(i int) bool {
	alive := l.r.slotAlive(i)
	if l.r.watchAlive != nil {
		l.r.watchAlive(i, alive)
	}
	return alive
}

func (l liveness) ConsumerAlive() bool { return l.r.consumerAlive() }

// registerBarrier makes this process a target of the membarrier the
// waiting protocol issues (once per process).
func registerBarrier() { futex.Register() }

// enter starts a method that reads or writes the segment: it holds life
// shared until leave, or returns ErrClosed (not holding it) after Close.
func (r *Ring) enter() error {
	r.life.RLock()
	if r.closed.Load() {
		r.life.RUnlock()
		return r.errClosed()
	}
	return nil
}

// leave ends what enter started.
func (r *Ring) leave() { r.life.RUnlock() }

// check is enter's test alone, for the unexported halves that run inside
// an enter.
func (r *Ring) check() error {
	if r.closed.Load() {
		return r.errClosed()
	}
	return nil
}

func (r *Ring) errClosed() error {
	return fmt.Errorf("ipc: %q: the ring is closed (Ring.Close); open it again to use it: %w", r.seg.Path(), ErrClosed)
}

// checkIdle is Close's check, in -race builds, before it changes anything:
// a Producer or Consumer call running in another goroutine that is not
// waiting for room or data is a broken contract (Close would unmap the
// segment under it): panic, naming it, with the ring still open.
func (r *Ring) checkIdle() {
	r.mu.Lock()
	eps := make([]endpoint, 0, len(r.endpoints))
	for c := range r.endpoints {
		eps = append(eps, c)
	}
	r.mu.Unlock()
	for _, c := range eps {
		kind, g := c.guard()
		if s := op(g.state.Load()); s != 0 && s&waitingBit == 0 && s != opClose {
			g.awaitIdle(kind) // panics
		}
	}
}

// beginWait registers a Producer or Consumer call that is about to wait for
// room or data, so that Close wakes it and waits for it; closed is the
// endpoint's flag. It reports false, not registered, if the endpoint was
// closed meanwhile: the call returns ErrClosed.
func (r *Ring) beginWait(closed *atomic.Bool) bool {
	r.waiters.Add(1)
	if closed.Load() {
		r.waiters.Add(-1)
		return false
	}
	return true
}

// endWait ends what beginWait registered; the call touches the segment no
// more.
func (r *Ring) endWait() { r.waiters.Add(-1) }

// awaitWaiters wakes every waiting Producer and Consumer call (their
// endpoints are shut: each sees it at its next check and returns
// ErrClosed) and returns once none is registered. A waiter may have loaded
// the futex word just before the first bump and sleep on it, so the bump and
// wake repeat until the count is zero.
func (r *Ring) awaitWaiters() {
	for r.waiters.Load() != 0 {
		for _, wp := range []ring.WaitLine{r.r.ProducerWaitLine(), r.r.ConsumerWaitLine()} {
			wp.Seq.Add(1)
			_, _ = futex.Wake(wp.Seq, math.MaxInt32)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// writable refuses a producer or consumer role (role) on a ring opened
// WithReadOnly: taking one writes the segment.
func (r *Ring) writable(role string) error {
	if r.seg.ReadOnly() {
		return fmt.Errorf("ipc: %q is open read-only (WithReadOnly), so it cannot have a %s; open it without WithReadOnly to produce or consume: %w", r.seg.Path(), role, errs.ErrReadOnly)
	}
	return nil
}

// lockRole takes the role lock at line, or reports who holds it.
func (r *Ring) lockRole(line int64, role string) (*shm.Lock, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	l, err := r.seg.Lock(line, ring.LineSize)
	if errors.Is(err, shm.ErrBusy) {
		return nil, fmt.Errorf("ipc: %q already has a %s (a live process holds its lock); close it first: %w", r.seg.Path(), role, ErrBusy)
	}
	return l, err
}

// register records a new endpoint; called inside enter, so Close (which
// takes life exclusively first) either sees it or has already failed the
// enter.
func (r *Ring) register(c endpoint) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.endpoints == nil {
		return r.errClosed()
	}
	r.endpoints[c] = struct{}{}
	return nil
}

func (r *Ring) unregister(c endpoint) {
	r.mu.Lock()
	delete(r.endpoints, c)
	r.mu.Unlock()
}

// Close closes any Producer or Consumer still open on the ring, then unmaps
// the segment; see Ring for what may run concurrently with it. It waits for
// the Ring's methods in progress, wakes the Producer and Consumer calls
// waiting for room or data (they return ErrClosed) and waits for them to
// return. Close is idempotent; later calls return nil.
func (r *Ring) Close() error {
	if raceChecks {
		r.checkIdle()
	}
	r.life.Lock()
	if r.closed.Load() {
		r.life.Unlock()
		return nil
	}
	r.closed.Store(true)
	r.mu.Lock()
	eps := r.endpoints
	r.endpoints = nil
	r.mu.Unlock()
	for c := range eps {
		c.shut()
	}
	r.life.Unlock()
	r.awaitWaiters()
	var errs []error
	for c := range eps {
		errs = append(errs, c.closeFromRing())
	}
	errs = append(errs, r.seg.Close())
	return errors.Join(errs...)
}
