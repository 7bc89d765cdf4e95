package waitset

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/pad"
	"github.com/shmring/shmring/ipc"
)

const (
	defaultBudget      = 64
	defaultSpins       = 100
	defaultYields      = 20
	defaultPeerTimeout = time.Second
)

// Config is how a Set reads and waits. A nil *Config means every default.
type Config struct {
	// Budget is the most messages one member delivers per turn of the
	// round robin; 0: 64. A larger budget costs fewer position stores per
	// message and gives a flooded ring longer turns.
	Budget int
	// Wait is how the set waits while every member is empty: Strategy
	// (Hybrid, the zero value, spins, yields, then parks; Spin, Yield,
	// Park), Spins and Yields (Hybrid: passes over the members with a CPU
	// pause, then with a sched_yield, before it parks; 0: 100 and 20; no
	// spinning when GOMAXPROCS or the CPU count is 1), and PeerTimeout (a
	// member that is empty and has had no producer for this long is
	// reported: a MemberError matching ipc.ErrPeerDead, once per absence,
	// an absence being what follows a producer seen attached or a write
	// since the last sample (docs/waitset.md); 0: 1 s). Hook is
	// not supported: a non-nil Hook is io/fs.ErrInvalid. A member ring's
	// consumer-policy override (ringctl policy) does not change how a set
	// waits.
	Wait ipc.Wait
	// DoorbellMode is the permission bits of the doorbell files the set
	// creates for its members with descriptor flag bit 4 (ipc.Config.Doorbell),
	// one in each directory such members live in; 0: 0600. A mode
	// writable by others (0o002) is io/fs.ErrInvalid: producers refuse
	// such a doorbell (docs/layout.md, "Doorbell files").
	DoorbellMode os.FileMode
	// StallLimit is each member consumer's ipc.ConsumerConfig.StallLimit:
	// how long a dead MPSC producer's reservation may stop the ring before
	// it is skipped; 0: 1 s.
	StallLimit time.Duration
}

// Set consumes many rings from one goroutine; see the package doc. Make it
// with New.
type Set struct {
	budget      int
	strategy    ipc.Strategy
	spins       int
	yields      int
	peerTimeout time.Duration
	checkEvery  time.Duration
	stallLimit  time.Duration

	// ctrl is the set's own futex word, slept on with the members' words:
	// Join, Leave, Close and a cancelled context add 1 to it and wake it
	// (poke). Process-private memory, but a shared futex as the members'
	// are (futex.Vec's words are all shared; futex.Wake is shared).
	ctrl atomic.Uint32
	// ops counts joins and leaves queued for the reading goroutine: a
	// non-zero value sends the reader to apply them.
	ops      atomic.Int32
	isClosed atomic.Bool

	mu      sync.Mutex
	cond    sync.Cond // on mu: a Read ended, or queued operations were applied
	reading bool      // a Read runs: only its goroutine changes members
	closed  bool
	joins   []*Member // queued for the reader
	leaves  []*Member

	// The reader's (a Read's goroutine; with no Read running, whoever
	// holds mu). members changes only under mu.
	members   []*Member
	next      int                   // the member whose turn is next
	used      int                   // what it delivered of its budget in a turn cut short by max
	fn        func(*Member, []byte) // the running Read's callback
	vec       futex.Vec             // the words of one sleep
	parked    []*Member             // the members registered for that sleep, on their own words
	onBell    []*Member             // the members registered for that sleep, on a doorbell
	onBellAt  []int                 // their indexes in members
	parkedAt  []int                 // their indexes in members
	sawEmpty  bool                  // the last pass found a member empty
	lastCheck time.Time             // the last liveness check of empty members
	bells     []*bell               // under mu: the doorbells of the members with flag bit 4
	bellMode  os.FileMode           // their files' mode
	noBell    bool                  // tests: every member on its own word
	slept     []*bell               // the doorbells of the last sleep
	rung      []*bell               // the doorbells announced in the running wait (unannounce)
	epoch     uint64                // counts sleeps (bell.epoch)
	chunks    []*chunk              // the helpers that sleep on members beyond the first 127
	inUse     int                   // how many of them the running sleep uses
	helpers   sync.WaitGroup        // their goroutines
	woken     atomic.Int32          // s.parked's index of the member whose word woke a helper (-1: none)
	fenced    bool                  // every announced flag was stored before a barrier of the running wait
	barriers  atomic.Uint64         // membarriers issued (tests)
	parks     atomic.Uint64         // sleeps

	// Counters (Stats): sleeps ended by a member's word, ended early with
	// nothing to deliver, run out; members reported with no producer,
	// dropped.
	wakeups, spurious, timeouts, peerDead, dropped atomic.Uint64
	bellWakeups                                    atomic.Uint64 // sleeps ended by a doorbell (in wakeups too)
	restores, misses                               atomic.Uint64 // the members' DoorbellRestores, MissedWakeups
}

// New returns an empty Set configured by cfg (nil: every default). It fails
// with io/fs.ErrInvalid for a Config no set can follow (a negative count or
// duration, an unknown Strategy, a Hook, a DoorbellMode writable by others).
func New(cfg *Config) (*Set, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	w := cfg.Wait
	switch {
	case cfg.Budget < 0, w.Spins < 0, w.Yields < 0, w.PeerTimeout < 0, cfg.StallLimit < 0:
		return nil, fmt.Errorf("waitset: Budget %d, Wait.Spins %d, Wait.Yields %d, Wait.PeerTimeout %v and StallLimit %v must not be negative: %w",
			cfg.Budget, w.Spins, w.Yields, w.PeerTimeout, cfg.StallLimit, errs.ErrInvalid)
	case w.Strategy > ipc.Park:
		return nil, fmt.Errorf("waitset: unknown Wait.Strategy %d; use ipc.Hybrid, Spin, Yield or Park: %w", w.Strategy, errs.ErrInvalid)
	case cfg.DoorbellMode&0o002 != 0:
		return nil, fmt.Errorf("waitset: DoorbellMode %#o is writable by others: producers refuse such a doorbell, as openers refuse such a ring; use 0600, 0660 or 0640: %w", cfg.DoorbellMode.Perm(), errs.ErrInvalid)
	case w.Hook != nil:
		return nil, fmt.Errorf("waitset: Wait.Hook is not supported by a set; use a context to bound a Read: %w", errs.ErrInvalid)
	}
	s := pad.New[Set]()
	s.budget, s.strategy, s.spins, s.yields = cfg.Budget, w.Strategy, w.Spins, w.Yields
	s.peerTimeout, s.stallLimit = w.PeerTimeout, cfg.StallLimit
	s.bellMode, s.noBell = bellModeOf(cfg.DoorbellMode), testNoBell
	if s.budget == 0 {
		s.budget = defaultBudget
	}
	if s.spins == 0 {
		s.spins = defaultSpins
	}
	if s.yields == 0 {
		s.yields = defaultYields
	}
	if runtime.GOMAXPROCS(0) == 1 || runtime.NumCPU() == 1 {
		s.spins = 0 // nobody else can make progress while we spin
	}
	if s.peerTimeout == 0 {
		s.peerTimeout = defaultPeerTimeout
	}
	// Liveness tests cost a system call per producer slot: a few per
	// peer timeout, not one per sleep.
	s.checkEvery = min(max(s.peerTimeout/8, 10*time.Millisecond), 250*time.Millisecond)
	s.cond.L = &s.mu
	return s, nil
}

// poke wakes the reader: its sleep ends, and it looks at ops and closed.
func (s *Set) poke() {
	s.ctrl.Add(1)
	_, _ = futex.Wake(&s.ctrl, math.MaxInt32)
}

// errClosed is what a call on a closed Set returns.
var errClosed = fmt.Errorf("waitset: the set is closed (Set.Close); make a new one with New: %w", ipc.ErrClosed)

// Join takes the consumer role of r (see ipc.Ring.Consumer: it resumes at
// the position the previous consumer released) and adds r to the set; a
// running Read delivers from it from its next turn or wake-up. If r was
// created with ipc.Config.Doorbell and has a directory (not a memfd), the
// set sleeps on its doorbell for r: it makes the doorbell file in r's
// directory at the first such Join there and stores its id in r's line 15
// (if it cannot make one, r is slept on through its own word). It fails with
// ipc.ErrBusy if r has a consumer already (this set's included),
// ipc.ErrClosed if the set or r is closed, io/fs.ErrInvalid for a nil r.
// Safe from any goroutine; not from a Read's callback.
func (s *Set) Join(r *ipc.Ring) (*Member, error) {
	if r == nil {
		return nil, fmt.Errorf("waitset: join: the ring is nil; pass a ring from ipc.Open or ipc.Create: %w", errs.ErrInvalid)
	}
	if s.isClosed.Load() {
		return nil, errClosed
	}
	c, err := r.Consumer(&ipc.ConsumerConfig{
		Wait:       ipc.Wait{Strategy: ipc.Spin, PeerTimeout: s.peerTimeout}, // never used: the set waits
		StallLimit: s.stallLimit,
	})
	if err != nil {
		return nil, fmt.Errorf("waitset: join %q: %w", r.Path(), err)
	}
	m := newMember(s, r, c)
	m.h.OnShut(s.poke) // a member's Close ends a sleep on its doorbell
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.Join(errClosed, c.Close())
	}
	s.ringBell(m)
	if s.reading {
		s.joins = append(s.joins, m)
		s.ops.Add(1)
		s.mu.Unlock()
		s.poke()
		return m, nil
	}
	s.members = append(s.members, m)
	s.mu.Unlock()
	return m, nil
}

// Leave removes m from the set and releases its ring's consumer role (the
// next consumer resumes where the set released), first clearing the
// doorbell id the set stored in its line 15, and removing the doorbell
// file with the last member that used it. It returns once the set
// no longer reads m's ring, so the ring may then be closed; a running Read
// lets go of it at its next turn or wake-up. Leave is idempotent, and
// returns nil for a member the set already dropped (see MemberError). Safe
// from any goroutine, but not from a Read's callback (it would wait for
// itself).
func (s *Set) Leave(m *Member) error {
	if m == nil || m.s != s {
		return fmt.Errorf("waitset: leave: the member is nil or another set's: %w", errs.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.left {
		return nil
	}
	if !s.reading {
		return s.remove(m)
	}
	s.leaves = append(s.leaves, m)
	s.ops.Add(1)
	s.poke()
	for !m.left {
		s.cond.Wait()
	}
	return m.closeErr
}

// remove takes m out of the set and closes its consumer; under mu, by the
// reader or with no Read running.
func (s *Set) remove(m *Member) error {
	if m.left {
		return nil
	}
	for i, x := range s.members {
		if x == m {
			s.members = slices.Delete(s.members, i, i+1)
			if s.next > i {
				s.next--
			} else if s.next == i {
				s.used = 0
			}
			break
		}
	}
	for i, x := range s.joins {
		if x == m {
			s.joins = slices.Delete(s.joins, i, i+1)
			break
		}
	}
	if m.announced {
		// Left in the middle of a wait (by the reader: only a wait
		// announces): its producers need not wake us any more.
		m.announced = false
		if m.h.Enter() == nil {
			if m.h.Line.Parked.Load() != 0 {
				m.h.Line.Parked.Store(0)
			}
			m.h.Leave()
		}
	}
	m.left = true
	m.closeErr = errors.Join(s.unbell(m), m.c.Close())
	s.cond.Broadcast()
	return m.closeErr
}

// apply takes the queued joins and leaves in; under mu, by the reader.
func (s *Set) apply() {
	s.ops.Store(0)
	s.members = append(s.members, s.joins...)
	clear(s.joins)
	s.joins = s.joins[:0]
	for _, m := range s.leaves {
		_ = s.remove(m) // its error goes to Leave (m.closeErr)
	}
	clear(s.leaves)
	s.leaves = s.leaves[:0]
	s.cond.Broadcast()
}

// Members returns the set's members now (joined, not left or dropped), in
// the order of the round robin. Safe from any goroutine.
func (s *Set) Members() []*Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Member, 0, len(s.members)+len(s.joins))
	out = append(out, s.members...)
	for _, m := range s.joins {
		if !m.left {
			out = append(out, m)
		}
	}
	return out
}

// Close releases every member's consumer role (the rings stay open: close
// them yourself), removes the set's doorbell files and makes the set unusable: calls return ipc.ErrClosed. A
// Read waiting is woken and returns ipc.ErrClosed; a Read delivering
// finishes its turn. Close waits for the running Read to return, so it must
// not be called from a Read's callback. Idempotent, safe from any
// goroutine.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.isClosed.Store(true)
	s.poke()
	for s.reading {
		s.cond.Wait()
	}
	var errList []error
	for _, m := range slices.Concat(s.members, s.joins) {
		errList = append(errList, s.remove(m))
	}
	s.members, s.joins = nil, nil
	s.stopChunks()
	errList = append(errList, s.closeBells())
	return errors.Join(errList...)
}
