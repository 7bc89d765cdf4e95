package ipc

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// Kind selects the producer protocol of a ring.
type Kind = ring.Kind

// Ring kinds.
const (
	SPSC = ring.SPSC
	MPSC = ring.MPSC
)

// DefaultCapacity is the data area of a ring created without WithCapacity.
const DefaultCapacity = 1 << 20

type options struct {
	cfg              ring.Config
	shm              []shm.Option
	high, low        uint64
	target, interval time.Duration
}

// Option configures Create and Open.
type Option func(*options)

// WithCapacity sets the data area size in bytes (a power of two, at least
// 1 KiB) of a ring made by Create. Default 1 MiB.
func WithCapacity(n uint64) Option { return func(o *options) { o.cfg.Capacity = n } }

// WithMaxMessage sets the largest payload (at most capacity/8; default
// capacity/8) of a ring made by Create.
func WithMaxMessage(n uint64) Option { return func(o *options) { o.cfg.MaxMessage = n } }

// WithKind sets the kind of a ring made by Create. Default SPSC.
func WithKind(k Kind) Option { return func(o *options) { o.cfg.Kind = k } }

// WithProducers sets the number of producer slots of an MPSC ring made by
// Create: the most producers attached at once (default 64).
func WithProducers(n int) Option { return func(o *options) { o.cfg.Slots = n } }

// WithPressureLevels sets, at creation, the depths in bytes at which the
// ring's pressure rises (high) and falls again (low <= high); see
// Ring.SetPressureLevels.
func WithPressureLevels(high, low uint64) Option {
	return func(o *options) { o.high, o.low = high, low }
}

// WithTimestamps makes every record of a ring made by Create carry its
// commit time (8 bytes, one clock read per record), so that the consumer
// measures queueing delay: Stats' histogram, the Prometheus histogram and
// the adaptive pressure level (WithTargetDelay).
func WithTimestamps() Option { return func(o *options) { o.cfg.Timestamps = true } }

// WithDropOldest creates a ring whose producers may use the DropOldest
// policy (newest wins). Its consumer copies each message out and releases it
// with a compare-and-swap (SPSC) or under a release lock it shares with
// reclaiming producers (MPSC) before delivering it, to stay safe from a
// producer reclaiming what it reads. An MPSC one is ring layout version 2:
// builds that read only version 1 refuse it with a version error.
func WithDropOldest() Option { return func(o *options) { o.cfg.Overwrite = true } }

// WithHeaderCommit creates an SPSC ring whose consumer finds messages by
// their record headers instead of loading the producer's position: one
// cache line less moves between the processes per message
// (docs/benchmarks.md measures it). It is ring layout version 2, which
// builds that read only version 1 refuse; not with WithDropOldest.
func WithHeaderCommit() Option { return func(o *options) { o.cfg.HeaderCommit = true } }

// WithSequences makes every record of a ring made by Create carry its
// producer's sequence number (8 bytes per record). The consumer discards a
// record whose sequence is at or below the last it delivered from that
// producer (Stats.Duplicates), remembering it in the segment across
// consumer restarts; a producer that restarts under the same ID resumes
// after every sequence its predecessor may have committed
// (Producer.NextSeq), so none of its new messages is discarded, and
// Producer.InDoubt names the messages to resend after a crash: each,
// resent with its original sequence (WriteSeq), is delivered once.
func WithSequences() Option { return func(o *options) { o.cfg.Sequences = true } }

// WithTargetDelay turns on, at creation, the adaptive pressure level of a
// ring with timestamps (WithTimestamps is implied): when every record's
// queueing delay stays above target for interval, pressure rises before the
// ring is full; the first record under target lowers it (in the spirit of
// CoDel).
func WithTargetDelay(target, interval time.Duration) Option {
	return func(o *options) { o.cfg.Timestamps, o.target, o.interval = true, target, interval }
}

// WithMode sets the permission bits of a created segment (default 0600).
func WithMode(m os.FileMode) Option { return func(o *options) { o.shm = append(o.shm, shm.Mode(m)) } }

// WithDir resolves bare names in dir instead of $SHMRING_DIR or /dev/shm.
func WithDir(dir string) Option { return func(o *options) { o.shm = append(o.shm, shm.Dir(dir)) } }

// WithTrustOwner lets Open map a segment owned by another user.
func WithTrustOwner() Option { return func(o *options) { o.shm = append(o.shm, shm.TrustOwner()) } }

// WithReadOnly opens a ring for inspection only (Stats); Producer and
// Consumer then fail.
func WithReadOnly() Option { return func(o *options) { o.shm = append(o.shm, shm.ReadOnly()) } }

func collect(opts []Option) options {
	o := options{cfg: ring.Config{Capacity: DefaultCapacity}}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Ring is a ring in a shared-memory segment, open in this process.
//
// Concurrency: a Ring's methods are safe for concurrent use by any number
// of goroutines, Close included: Close waits for the methods in progress
// (Stats, Peek, Doctor, Producer, ...) to return, and after it every method
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

// Create makes a new ring segment named name (a bare name lives in /dev/shm
// or $SHMRING_DIR; a name with a slash is a path) and opens it. The segment
// appears under its name only once fully initialised. It fails with
// ErrExist if the name is taken, and with shm.ErrBadName if the name is not
// printable (a control, format or invisible character, invalid UTF-8).
func Create(name string, opts ...Option) (*Ring, error) {
	o := collect(opts)
	size, err := ring.Size(o.cfg)
	if err != nil {
		return nil, fmt.Errorf("ipc: create %q: %w", name, err)
	}
	seg, err := shm.Create(name, size, func(body []byte) error { return initBody(body, o) }, o.shm...)
	if err != nil {
		return nil, err
	}
	return attach(seg)
}

// initBody formats a ring in a new segment's body with the options' levels.
func initBody(body []byte, o options) error {
	if err := ring.Format(body, o.cfg); err != nil {
		return err
	}
	if o.high == 0 && o.low == 0 && o.target == 0 {
		return nil
	}
	r, err := ring.Attach(body)
	if err != nil {
		return err
	}
	if err := r.SetTargetDelay(o.target, o.interval); err != nil {
		return err
	}
	return r.SetPressureLevels(o.high, o.low)
}

// Open opens an existing ring segment, validating its header and ring
// descriptor; see shm.Open for the checks made before anything is mapped.
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

// Remove unlinks a ring segment. Processes that have it open keep using it
// until they close it; the memory is freed when the last one does.
func Remove(name string, opts ...Option) error {
	return shm.Remove(name, collect(opts).shm...)
}

// Path returns the segment's file path.
func (r *Ring) Path() string { return r.seg.Path() }

// Header returns the segment's decoded header (creation time, creator).
func (r *Ring) Header() shm.Header { return r.seg.Header() }

// Kind returns the ring's kind.
func (r *Ring) Kind() Kind { return r.r.Kind() }

// Slots returns the number of producer slots (0 for an SPSC ring).
func (r *Ring) Slots() int { return r.r.Slots() }

// Capacity returns the data area size in bytes.
func (r *Ring) Capacity() uint64 { return r.r.Capacity() }

// MaxMessage returns the largest payload a message may have.
func (r *Ring) MaxMessage() uint64 { return r.r.MaxMessage() }

// DropOldest reports whether the ring was created WithDropOldest.
func (r *Ring) DropOldest() bool { return r.r.Overwrite() }

// Sequences reports whether records carry their producer's sequence number.
func (r *Ring) Sequences() bool { return r.r.Sequences() }

// HeaderCommit reports whether the ring was created WithHeaderCommit.
func (r *Ring) HeaderCommit() bool { return r.r.HeaderCommit() }

// Timestamps reports whether records carry their commit time.
func (r *Ring) Timestamps() bool { return r.r.Timestamps() }

// Stats is a snapshot of a ring's counters and attachment, read from the
// segment (so it covers every process using the ring).
type Stats struct {
	ring.Stats
	Kind             Kind
	ProducerAttached bool // SPSC: a live process holds the producer role; MPSC: at least one slot is held
	ConsumerAttached bool // a live process holds the consumer role
	// Slots is the number of MPSC producer slots (0 for SPSC); DropOldest,
	// Sequences and HeaderCommit are the ring's creation options.
	Slots                               int
	DropOldest, Sequences, HeaderCommit bool
	// Producers lists the MPSC slots that have ever been used.
	Producers []ProducerStats
}

// ProducerStats describes one MPSC producer slot.
type ProducerStats struct {
	ring.SlotStats
	// Alive: a process holds the slot's lock, and the recorded holder is
	// not known to be gone (see the consumer's rule in docs/design.md,
	// "Liveness"): what a consumer would decide. A holder in another PID
	// namespace is alive while it holds the lock.
	Alive bool
}

// Stats reads the ring's counters from the segment. It costs the producer
// and consumer nothing.
//
// A segment file truncated (or grown) after it was mapped is reported as
// ErrCorrupt, saying to what size, from what and what to do, rather than
// read (see docs/security.md).
func (r *Ring) Stats() (s Stats, err error) {
	if err := r.enter(); err != nil {
		return Stats{}, err
	}
	defer r.leave()
	err = r.inspect(func() error {
		var err error
		s, err = r.stats()
		return err
	})
	if isUnreadable(err) {
		return Stats{}, err
	}
	return s, err
}

// stats is Stats, run under inspect.
func (r *Ring) stats() (Stats, error) {
	s := Stats{Stats: r.r.Stats(), Kind: r.r.Kind(), Slots: r.r.Slots(),
		DropOldest: r.r.Overwrite(), Sequences: r.r.Sequences(), HeaderCommit: r.r.HeaderCommit()}
	var errs []error
	var err error
	if r.r.Kind() == SPSC {
		s.ProducerAttached, err = r.seg.Locked(ring.ProducerLine, ring.LineSize)
		errs = append(errs, err)
	}
	for i := 0; i < r.r.Slots(); i++ {
		sl := r.r.Slot(i)
		alive, err := r.slotLiveness(i, sl)
		errs = append(errs, err)
		if sl.PID == 0 && !alive {
			continue
		}
		s.Producers = append(s.Producers, ProducerStats{SlotStats: sl, Alive: alive})
		s.ProducerAttached = s.ProducerAttached || alive
	}
	s.ConsumerAttached, err = r.seg.Locked(ring.ConsumerLine, ring.LineSize)
	errs = append(errs, err)
	return s, errors.Join(errs...)
}

// ProducerSlot returns the counters and owner of MPSC slot i, without the
// liveness test Stats makes, nor its check of the file's size: on a segment
// truncated under the mapping it faults (SIGBUS); use Stats to inspect.
// After Close (or for a slot that does not exist) it returns a zero
// SlotStats; Stats reports ErrClosed.
func (r *Ring) ProducerSlot(i int) ring.SlotStats {
	if r.enter() != nil {
		return ring.SlotStats{Slot: i}
	}
	defer r.leave()
	return r.r.Slot(i)
}

// SetPressureLevels sets the depths, in bytes, at which the ring's pressure
// rises (high) and falls again (low <= high <= capacity): hysteresis, so
// producers that slow down at the high level do not flap. high 0 turns
// pressure off. Any process may call it; producers follow at once.
func (r *Ring) SetPressureLevels(high, low uint64) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	if r.seg.ReadOnly() {
		return fmt.Errorf("ipc: %q is open read-only", r.Path())
	}
	return r.inspect(func() error { return r.r.SetPressureLevels(high, low) })
}

// SetTargetDelay sets the adaptive pressure level of a ring created with
// timestamps; target 0 turns it off. Any process may call it.
func (r *Ring) SetTargetDelay(target, interval time.Duration) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	if r.seg.ReadOnly() {
		return fmt.Errorf("ipc: %q is open read-only", r.Path())
	}
	return r.inspect(func() error { return r.r.SetTargetDelay(target, interval) })
}

// depth is the ring's depth in bytes now.
func (r *Ring) depth() uint64 { return r.r.Stats().Depth }

// ErrInvalidPolicy is returned by SetPolicy for a policy that does not
// exist or does not apply to that side (a consumer cannot drop).
var ErrInvalidPolicy = errors.New("invalid policy for this side")

// SetPolicy overrides, in the segment, the wait policy of every producer and
// of the consumer of the ring, in whatever process they run; they follow it
// from their next wait (parked ones are woken to see it). 0 removes an
// override, so each goes back to its own configuration.
func (r *Ring) SetPolicy(producers, consumer Policy) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	if r.seg.ReadOnly() {
		return fmt.Errorf("ipc: %q is open read-only", r.Path())
	}
	valid := func(p Policy) bool { _, ok := policyNames[p]; return p == 0 || ok }
	if !valid(producers) || !valid(consumer) || (consumer != 0 && !consumer.waits()) ||
		(producers == DropOldest && !r.r.Overwrite()) {
		return fmt.Errorf("ipc: set policy producers=%v consumer=%v: %w", producers, consumer, ErrInvalidPolicy)
	}
	return r.inspect(func() error {
		pm, cm := r.r.Modes()
		pm.Store(uint32(producers))
		cm.Store(uint32(consumer))
		for _, wp := range []ring.WaitPoint{r.r.ProducerWait(), r.r.ConsumerWait()} {
			wp.Seq.Add(1)
			_, _ = futex.Wake(wp.Seq, math.MaxInt32)
		}
		return nil
	})
}

// consumerAlive reports whether a live process holds the consumer role.
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

func (r *Ring) consumerAlive() bool {
	ok, err := r.seg.Locked(ring.ConsumerLine, ring.LineSize)
	return ok || err != nil // never declare a peer dead on doubt
}

// producersAlive reports whether any producer is attached: the SPSC
// producer's lock, or any MPSC slot whose holder is alive.
func (r *Ring) producersAlive() bool {
	if r.r.Kind() == SPSC {
		ok, err := r.seg.Locked(ring.ProducerLine, ring.LineSize)
		return ok || err != nil
	}
	for i := 0; i < r.r.Slots(); i++ {
		if r.slotAlive(i) {
			return true
		}
	}
	return false
}

// slotAlive reports whether the holder of MPSC slot i is alive; see
// slotLiveness. It answers true when it cannot tell: never skip on doubt.
// Every decision that a slot's holder is dead goes through here: the MPSC
// consumer's recovery, the drop-oldest release lock, Doctor and its repair,
// and (through slotLiveness) Stats.
func (r *Ring) slotAlive(i int) bool {
	alive, err := r.slotLiveness(i, r.r.Slot(i))
	return alive || err != nil
}

// slotLiveness decides whether the holder of MPSC slot i (whose words sl
// the caller loaded from the slot) is alive. The kernel decides, across
// PID namespaces: the slot's open-file-description lock is released when
// its holder dies, however it dies, wherever it runs. The PID and start time
// recorded in the slot are only a hint that can prove a holder dead, and
// only to an observer in the PID namespace the slot records (sl.PIDNamespace
// equal to ours): in a container sharing /dev/shm the PID is another
// process's, or none. The hint exists for one case: a lock kept alive after
// its holder died by a child that inherited the descriptor (descriptors
// are O_CLOEXEC, so only a fork without exec can do that; a Go program
// cannot).
//
// A slot recording namespace 0 (unknown: written by a producer that
// predates the field, or that could not read /proc/self/ns/pid) is judged
// by its lock alone. Asking its PID instead would bring back, for every such
// producer in a container, the silent corruption this rule exists to
// prevent (a live reservation skipped, its late commit landing in reused
// space); trusting the lock costs, at worst, a ring stalled behind a
// forked child that keeps a dead holder's lock, which is visible (Stats,
// doctor) and ends when that child exits.
func (r *Ring) slotLiveness(i int, sl ring.SlotStats) (bool, error) {
	locked, err := r.slotLocked(i)
	if err != nil || !locked {
		return locked, err
	}
	return !proc.Gone(int(sl.PID), sl.StartTime, sl.PIDNamespace), nil
}

// registerBarrier makes this process a target of the membarrier the
// waiting protocol issues (once per process).
func registerBarrier() { futex.Register() }

// slotLocked reports whether a process holds MPSC slot i's lock.
func (r *Ring) slotLocked(i int) (bool, error) {
	return r.seg.Locked(int64(r.r.SlotOffset(i)), ring.LineSize)
}

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
		for _, wp := range []ring.WaitPoint{r.r.ProducerWait(), r.r.ConsumerWait()} {
			wp.Seq.Add(1)
			_, _ = futex.Wake(wp.Seq, math.MaxInt32)
		}
		time.Sleep(50 * time.Microsecond)
	}
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
