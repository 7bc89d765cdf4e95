package route

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
)

// MaxRings is the most rings one Router routes over.
const MaxRings = 64

// Strategy is how a Router picks a ring for a message.
type Strategy uint8

const (
	// LeastDepth sends each message to the healthy ring with the fewest
	// bytes waiting (as sampled, plus what the router sent since), ties
	// taken in turn. The default.
	LeastDepth Strategy = iota
	// RoundRobin takes the healthy rings in turn, passing over a pressured
	// one (its Pressure raised, or full at the last try) while another has
	// room.
	RoundRobin
	// ByKey sends a message to the ring its key hashes to (SendKey);
	// see Config.Spill.
	ByKey
)

// String returns the strategy's name as ringctl send --by takes it.
func (s Strategy) String() string {
	switch s {
	case LeastDepth:
		return "least"
	case RoundRobin:
		return "rr"
	case ByKey:
		return "key"
	}
	return fmt.Sprintf("Strategy(%d)", uint8(s))
}

// Config configures a Router; New takes a pointer, nil meaning every
// default (LeastDepth, wait for room, sample every 5 ms).
type Config struct {
	// By is the strategy; the zero value is LeastDepth.
	By Strategy
	// Spill lets ByKey send a message whose ring is pressured, full or out
	// of the rotation to the next healthy ring instead, counted in the
	// keyed ring's RingStats.Spilled. Off by default: with it, messages of
	// one key may arrive out of order.
	Spill bool
	// Full is what Send does when no ring takes a message (every one full,
	// or out of the rotation): wait (the zero value) for room on a healthy
	// ring until ctx ends, or ipc.Drop: ErrFull at once, counted in
	// Stats.Dropped. ipc.DropOldest is refused (a router never discards
	// what it wrote).
	Full ipc.Full
	// Overflow, if set, receives a message no ring takes instead (on the
	// sending goroutine; it must not keep msg), counted in
	// Stats.Overflowed; its error is Send's. Full is then ignored.
	Overflow func(msg []byte) error
	// Wait is how Send waits for room on a ring (ipc.Wait). Its Hook, if
	// set, is asked as ipc says; the router adds its own check, which
	// ends a wait on one ring every Sample to look at the others again.
	Wait ipc.Wait
	// ID is the producer ID (ipc.ProducerConfig.ID) taken on each MPSC
	// ring; 0: the first free slot.
	ID int
	// Sample is how often the router samples every ring's health, depth
	// and pressure (one ipc.Ring.Stats each). 0: 5 ms.
	Sample time.Duration
	// StallAfter is how long a ring's consumer may hold messages without
	// moving its position before the ring counts as stalled. 0: 500 ms.
	StallAfter time.Duration
}

// Health is a ring's state as the router last sampled it.
type Health uint8

const (
	// Healthy: a consumer is attached and not stalled.
	Healthy Health = iota
	// Dead: no process holds the ring's consumer role.
	Dead
	// Stalled: messages wait and the consumer has not moved its position
	// for Config.StallAfter.
	Stalled
)

// String returns "healthy", "dead" or "stalled".
func (h Health) String() string {
	switch h {
	case Healthy:
		return "healthy"
	case Dead:
		return "dead"
	case Stalled:
		return "stalled"
	}
	return fmt.Sprintf("Health(%d)", uint8(h))
}

// Stats is a snapshot of a Router's counters (Router.Stats).
type Stats struct {
	Rings      []RingStats // in the order given to New
	Dropped    uint64      // messages no ring took, dropped (Full ipc.Drop, or a wait ended by ctx)
	Overflowed uint64      // messages no ring took, handed to Config.Overflow
	Samples    uint64      // health samples taken
}

// RingStats is one ring's share of a Router's counters.
type RingStats struct {
	Name    string // the ring's path
	Routed  uint64 // messages written to this ring
	Spilled uint64 // ByKey with Spill: messages keyed to this ring that went to another
	Skipped uint64 // times a message passed this ring over because it was out of the rotation
	// Health is the state at the last sample; Left and Returned count
	// its departures from the rotation and its returns.
	Health         Health
	Left, Returned uint64
	Pressured      bool   // the ring's Pressure was raised at the last sample
	Depth          uint64 // bytes waiting at the last sample
}

// Router sends messages to one of several rings (see the package doc).
// It is used by one goroutine at a time (Send, TrySend, SendKey,
// TrySendKey, Close), as an ipc.Producer is; Stats is safe for concurrent
// use from any goroutine.
type Router struct {
	cfg   Config
	lanes []*lane
	next  int // RoundRobin, and LeastDepth's tie-break: where the next turn starts

	retrying bool // Send is in its full-ring wait, offering a message again

	dropped, overflowed, samples atomic.Uint64

	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

// lane is one ring and the router's state about it. The sender goroutine
// writes routed, spilled, skipped and sent (single writer: Store(Load()+1),
// no locked instruction); the sampler writes base, health, pressured and
// depth; Stats reads all of them.
type lane struct {
	r    *ipc.Ring
	p    *ipc.Producer
	name string
	over uint64 // record overhead in bytes: header and extras (ipc.Config.Capacity's formula)
	cap  uint64

	routed, spilled, skipped atomic.Uint64
	sent                     atomic.Uint64 // record bytes routed here, ever (an estimate: padding not counted)
	full                     bool          // sender only: TryWrite found it full since the last sample it saw
	fullGen                  uint64        // sender only: the sample generation full was set in

	base      atomic.Int64  // sampled depth minus sent as loaded before that sample
	health    atomic.Uint32 // a Health
	pressured atomic.Bool
	depth     atomic.Uint64
	left      atomic.Uint64
	returned  atomic.Uint64

	// Sampler only.
	lastPos      uint64
	lastProgress time.Time

	// The ring's line 12 (flush.go), written by the sampler, and by Close
	// once the sampler has stopped.
	h         *handle.Ring
	line      ring.RouteLine
	flushed   [3]uint64 // routed, spilled, skipped as last added to line
	pending   [3]uint64 // what the flush in progress adds
	pendingAt int64     // and the Unix ns it stamps
	flushFn   func() error
}

// New returns a Router over rings, taking a producer on each (as cfg says;
// nil: every default), and starts its sampler. The rings must stay open
// until the Router is closed. It fails with ErrNoRings for no ring or more
// than MaxRings, io/fs.ErrInvalid for a cfg it cannot follow, and with
// ipc's errors for a producer it cannot take (ErrBusy: an SPSC ring already
// has one).
func New(rings []*ipc.Ring, cfg *Config) (rt *Router, err error) {
	if len(rings) == 0 || len(rings) > MaxRings {
		return nil, fmt.Errorf("%w (got %d)", ErrNoRings, len(rings))
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	switch {
	case c.By > ByKey:
		return nil, fmt.Errorf("route: unknown strategy %d (want LeastDepth, RoundRobin or ByKey): %w", c.By, fs.ErrInvalid)
	case c.Full != 0 && c.Full != ipc.Drop:
		return nil, fmt.Errorf("route: Full %d: a router waits (the zero Full) or drops (ipc.Drop); it never reclaims what it wrote: %w", c.Full, fs.ErrInvalid)
	case c.Sample < 0 || c.StallAfter < 0:
		return nil, fmt.Errorf("route: negative Sample or StallAfter: %w", fs.ErrInvalid)
	case c.Spill && c.By != ByKey:
		return nil, fmt.Errorf("route: Spill applies to ByKey only (LeastDepth and RoundRobin route around pressure already): %w", fs.ErrInvalid)
	}
	if c.Sample == 0 {
		c.Sample = 5 * time.Millisecond
	}
	if c.StallAfter == 0 {
		c.StallAfter = 500 * time.Millisecond
	}
	made := &Router{cfg: c, stop: make(chan struct{})}
	rt = made
	defer func() {
		if err != nil {
			// made, not rt: a failing return has set rt to nil.
			err = errors.Join(err, made.closeProducers())
		}
	}()
	now := time.Now()
	for _, r := range rings {
		if r == nil {
			return nil, fmt.Errorf("route: a nil ring: %w", fs.ErrInvalid)
		}
		st, err := r.Stats()
		if err != nil {
			return nil, fmt.Errorf("route: %w", err)
		}
		l := &lane{r: r, name: r.Path(), cap: st.Capacity, over: 8, lastPos: st.ConsumerPos, lastProgress: now}
		l.initFlush()
		if st.Sequences {
			l.over += 8
		}
		if st.Timestamps || st.TargetDelay > 0 {
			l.over += 8
		}
		l.p, err = r.Producer(&ipc.ProducerConfig{Wait: rt.wait(l), ID: c.ID})
		if err != nil {
			return nil, fmt.Errorf("route: %s: %w", filepath.Base(l.name), err)
		}
		rt.lanes = append(rt.lanes, l)
		rt.sampleLane(l, st, nil, now)
		l.base.Store(int64(st.Depth))
		l.left.Store(0) // a ring dead from the start did not leave
	}
	rt.samples.Add(1)
	rt.done.Add(1)
	go rt.sampler()
	return rt, nil
}

// wait is the ipc.Wait of l's producer: the caller's, with a hook that
// ends a wait every Sample (or at once when l leaves the rotation) so that
// Send looks at the other rings again; not for ByKey without Spill, which
// waits for its ring only.
func (rt *Router) wait(l *lane) ipc.Wait {
	w := rt.cfg.Wait
	user := w.Hook
	every := rt.cfg.Sample
	strict := rt.cfg.By == ByKey && !rt.cfg.Spill // the keyed ring or nothing: never look elsewhere
	w.Hook = func(wi ipc.WaitInfo) error {
		if user != nil {
			if err := user(wi); err != nil {
				return err
			}
		}
		if !strict && (wi.Waited >= every || !l.healthy()) {
			return errReroute
		}
		return nil
	}
	return w
}

// Close stops the sampler, adds the counts not yet flushed to each ring's
// routing counters (line 12, see Stats) and closes the Router's producers
// (not the rings). It is called by the sending goroutine, or with sends
// stopped; idempotent.
func (rt *Router) Close() error {
	var err error
	rt.once.Do(func() {
		close(rt.stop)
		rt.done.Wait()
		now := time.Now()
		for _, l := range rt.lanes {
			l.flush(now)
		}
		err = rt.closeProducers()
	})
	return err
}

func (rt *Router) closeProducers() error {
	var errs []error
	for _, l := range rt.lanes {
		if l.p != nil {
			errs = append(errs, l.p.Close())
		}
	}
	return errors.Join(errs...)
}

// Stats returns the Router's counters and each ring's state at the last
// sample. Safe for concurrent use with Send.
//
// The per-ring Routed, Spilled and Skipped are this Router's alone. The
// Router also adds them into each ring's segment (line 12 of
// docs/layout.md), summed with those of every other router routing into
// the ring, in any process, where ops.Routing, ringctl stat and the
// metrics collectors read them: its sampler adds what it counted since
// the last sample every Config.Sample, and Close adds the rest, so the
// segment's counts lag this Router's by at most one sample interval (plus
// the time the sampler takes), and are exact once Close returns.
func (rt *Router) Stats() Stats {
	s := Stats{Dropped: rt.dropped.Load(), Overflowed: rt.overflowed.Load(), Samples: rt.samples.Load()}
	s.Rings = make([]RingStats, len(rt.lanes))
	for i, l := range rt.lanes {
		s.Rings[i] = RingStats{
			Name: l.name, Routed: l.routed.Load(), Spilled: l.spilled.Load(), Skipped: l.skipped.Load(),
			Health: Health(l.health.Load()), Left: l.left.Load(), Returned: l.returned.Load(),
			Pressured: l.pressured.Load(), Depth: l.depth.Load(),
		}
	}
	return s
}

// Len returns the number of rings.
func (rt *Router) Len() int { return len(rt.lanes) }
