package ipc

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/internal/pad"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// Consumer reads messages from a ring. A ring has at most one Consumer at
// a time across all processes; a second gets ErrBusy.
//
// Concurrency: a Consumer is not safe for concurrent use. Its reading
// methods (Read, TryRead, the iterator Batch returns and Release) and Close
// are called by one goroutine at a time; hand it from one goroutine to another only with
// synchronisation. Two goroutines reading through one Consumer at once
// deliver messages twice or not at all and may corrupt the ring for every
// process; -race builds detect the overlap and panic, naming both calls,
// before the second touches the ring. (The window, credit for producers,
// is set with ops.SetWindow, from any goroutine or process.)
//
// Messages are delivered to a callback as a slice into the ring, valid only
// until the callback returns. The callback runs on the calling goroutine and
// must not call the Consumer's methods, nor close its Ring. A nil callback
// returns [io/fs.ErrInvalid].
//
// After Close, or after its Ring's Close, every method returns ErrClosed. A
// read waiting for data when the Ring is closed returns ErrClosed; see Ring
// for the rest of Ring.Close's contract.
type Consumer struct {
	r      *Ring
	rc     *ring.Consumer
	lock   *shm.Lock
	policy policy                 // Wait.Strategy's
	closed atomic.Bool            // by Close, or by Ring.Close (shut): calls return ErrClosed
	onShut atomic.Pointer[func()] // a wait set's wake, called by shut (handle.Consumer.OnShut)
	use    useGuard               // -race builds: detects concurrent calls

	closeMu  sync.Mutex // serialises Close with Ring.Close's closeFromRing
	released bool       // under closeMu: the role and the heartbeat are released

	// MPSC recovery: when the consumer is blocked at an uncommitted
	// reservation, it asks ring.Recover at growing intervals.
	stallLimit   time.Duration
	blockedSince time.Time
	nextCheck    time.Time
	interval     time.Duration

	side waitSide      // waiting for data
	pw   ring.WaitLine // the producers' wait words, to wake them

	coalesce  time.Duration // ConsumerConfig.Coalesce
	holdUntil time.Time     // after a short batch: when the next may start

	stop, done chan struct{} // the heartbeat goroutine

	idleChecks atomic.Uint64 // checkIdle's looks (tests)
	lastIdle   time.Time     // checkIdle's last look

	held  bool // ConsumerConfig.Hold: reads release nothing; Release does
	times bool // the ring's records carry timestamps (Batch fills Record.Time)
	broke bool // Batch: the loop body broke (the batch ends; no coalescing hold)
}

// Consumer takes the consumer role of the ring, configured by cfg (nil:
// every default), and resumes at the position the previous consumer
// released. The role is held by an open-file-description lock on the
// segment, which the kernel drops if this process dies. It fails with
// [ErrBusy] if the ring has a consumer already, and with [io/fs.ErrInvalid]
// for a cfg no consumer can follow (an unknown Strategy, a negative count
// or duration).
func (r *Ring) Consumer(cfg *ConsumerConfig) (*Consumer, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	return r.newConsumer(cfg)
}

func (r *Ring) newConsumer(cfg *ConsumerConfig) (c *Consumer, err error) {
	if cfg == nil {
		cfg = &ConsumerConfig{}
	}
	if err := r.writable("consumer"); err != nil {
		return nil, err
	}
	side, pol, err := cfg.Wait.waitSide(true)
	if err != nil {
		return nil, err
	}
	if cfg.StallLimit < 0 || cfg.Coalesce < 0 {
		return nil, fmt.Errorf("ipc: consumer stall limit %v and coalesce %v must not be negative: %w", cfg.StallLimit, cfg.Coalesce, errs.ErrInvalid)
	}
	if cfg.Hold && r.r.Overwrite() {
		return nil, fmt.Errorf("ipc: %q: a consumer that holds its reads (ConsumerConfig.Hold) cannot read a ring created with DropOldest, whose producers reclaim the oldest messages; read it without Hold: %w", r.Path(), errs.ErrInvalid)
	}
	c = pad.New[Consumer]()
	*c = Consumer{r: r, policy: pol, stallLimit: cfg.StallLimit, coalesce: cfg.Coalesce, side: side, times: r.r.Timestamps()}
	if c.stallLimit == 0 {
		c.stallLimit = defaultStallLimit
	}
	c.side.wp = r.r.ConsumerWaitLine()
	_, c.side.mode = r.r.OverrideWords()
	c.side.peerAlive = r.producersAlive
	c.side.sliceCap = c.recoverIn
	c.side.idle = c.checkIdle
	c.side.depth = r.depth
	c.side.closed = &c.closed
	c.side.errPeer = peerDeadError(r.Path(), true, c.side.peerTimeout)
	c.pw = r.r.ProducerWaitLine()
	// The role lock is a local: a failed constructor returns a nil c, so
	// the deferred release must not reach the lock through c.
	lock, err := r.lockRole(ring.ConsumerLine, "consumer")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = lock.Unlock()
		}
	}()
	c.lock = lock
	if r.r.Doorbell() {
		// A dead wait set's doorbell id must not outlive its role lock
		// (docs/layout.md, "Line 15: doorbell").
		r.r.DoorbellLine().ID.Store(0)
	}
	if c.rc, err = r.r.NewConsumer(); err != nil {
		return nil, fmt.Errorf("ipc: %q: %w", r.Path(), err)
	}
	// NewConsumer may have finished a dead predecessor's release (MPSC, its
	// zeroing mark), handing room back: a producer asleep for room must
	// not wait out its sleep for it. One load; a wake only if one sleeps.
	if c.pw.Parked.Load() != 0 {
		wake(c.pw)
	}
	if cfg.Hold {
		if err = c.rc.Hold(); err != nil {
			return nil, fmt.Errorf("ipc: %q: %w", r.Path(), err)
		}
		c.held = true
	}
	if err = r.register(c); err != nil {
		return nil, err
	}
	if !r.seg.ReadOnly() {
		c.stop, c.done = make(chan struct{}), make(chan struct{})
		r.r.ConsumerHeartbeat(time.Now().UnixNano())
		go c.heartbeat()
	}
	return c, nil
}

// heartbeat refreshes the consumer's heartbeat word every second (for
// display: liveness comes from the consumer's lock).
func (c *Consumer) heartbeat() {
	defer close(c.done)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.r.r.ConsumerHeartbeat(now.UnixNano())
		}
	}
}

// recover is called when a read found nothing: if the consumer is blocked
// at an uncommitted MPSC reservation, it checks, at growing intervals,
// whether the owner is dead and skips the reservation if so. It reports
// whether a read may now succeed.
func (c *Consumer) recover() (bool, error) {
	if !c.rc.Blocked() {
		c.blockedSince = time.Time{}
		return false, nil
	}
	now := time.Now()
	if c.blockedSince.IsZero() {
		c.blockedSince, c.interval = now, 100*time.Microsecond
		c.nextCheck = now.Add(c.interval)
		return false, nil
	}
	if now.Before(c.nextCheck) {
		return false, nil
	}
	ok, err := c.rc.Recover()
	if err != nil || ok {
		c.blockedSince = time.Time{}
		return ok, err
	}
	c.interval = min(2*c.interval, max(c.stallLimit/4, 100*time.Microsecond))
	c.nextCheck = now.Add(c.interval)
	return false, nil
}

// checkIdle is the consumer's look for damage while it finds nothing to
// read (waitSide.idle: a sleep that ran out, never a read or a wake-up),
// damage it would otherwise never see, waiting on, silent, for messages
// that cannot come: the segment file truncated (one fstat: the error the
// inspection paths give), or its position word written by another process
// (ring.Consumer.CheckPosition; producers already refuse it). Either fails
// the consumer for good: its reads return the error from now on, without
// touching the segment.
func (c *Consumer) checkIdle() error {
	// At most one look per parkSlice, whoever asks: a spinning wait asks
	// every few milliseconds, a wait set at each of its sleeps, and a
	// sleep's slice is 1 ms on a kernel without membarrier (park.go).
	now := time.Now()
	if !c.lastIdle.IsZero() && now.Sub(c.lastIdle) < parkSlice {
		return nil
	}
	c.lastIdle = now
	c.idleChecks.Add(1)
	if err := c.r.seg.CheckSize(); err != nil {
		return c.rc.Fail(unreadable{fmt.Errorf("ipc: %w", err)})
	}
	if err := c.rc.CheckPosition(); err != nil {
		return fmt.Errorf("ipc: %q: %w", c.r.Path(), err)
	}
	return nil
}

// recoverIn bounds a park while the consumer is blocked at an uncommitted
// reservation: it must wake for its next liveness check.
func (c *Consumer) recoverIn() time.Duration {
	if c.blockedSince.IsZero() {
		return 0
	}
	return max(time.Until(c.nextCheck), 50*time.Microsecond)
}

// errClosed is what a call on a closed consumer returns.
func (c *Consumer) errClosed() error {
	return fmt.Errorf("ipc: %q: the consumer is closed (Consumer.Close or Ring.Close); take the role again with Ring.Consumer: %w", c.r.Path(), ErrClosed)
}

// Close releases the consumer role; the next consumer resumes where this
// one released. It is called by the goroutine that reads, or with the reads
// stopped (see Consumer); Close is idempotent, and may overlap its Ring's
// Close.
func (c *Consumer) Close() error {
	if raceChecks {
		c.use.enter("Consumer", opClose)
		defer c.use.exit()
	}
	c.closed.Store(true)
	return c.release()
}

// shut marks the consumer closed for Ring.Close: its calls return
// ErrClosed from now on, and a waiting one at its next check.
func (c *Consumer) shut() {
	c.closed.Store(true)
	if f := c.onShut.Load(); f != nil {
		(*f)()
	}
}

// closeFromRing releases the consumer for Ring.Close, once no call of it
// waits any more.
func (c *Consumer) closeFromRing() error {
	c.use.awaitIdle("Consumer")
	return c.release()
}

func (c *Consumer) guard() (string, *useGuard) { return "Consumer", &c.use }

// release gives the role back, once.
func (c *Consumer) release() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.released {
		return nil
	}
	c.released = true
	if c.stop != nil {
		close(c.stop)
		<-c.done
	}
	c.r.unregister(c)
	return errors.Join(c.lock.Unlock())
}
