package ipc

import (
	"context"
	"iter"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/internal/pad"
	"github.com/shmring/shmring/internal/spin"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// Consumer reads messages from a ring. A ring has at most one Consumer at
// a time across all processes; a second gets ErrBusy.
//
// Concurrency: a Consumer is not safe for concurrent use. Its reading
// methods (Read, TryRead, Batch and the iterator Batch returns) and Close
// are called by
// one goroutine at a time; hand it from one goroutine to another only with
// synchronisation. Two goroutines reading through one Consumer at once
// deliver messages twice or not at all and may corrupt the ring for every
// process; -race builds detect the overlap and panic, naming both calls,
// before the second touches the ring. SetWindow is safe for concurrent use,
// from any goroutine at any time.
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
	policy policy // Wait.Strategy's
	closed atomic.Bool // by Close, or by Ring.Close (shut): calls return ErrClosed
	use    useGuard    // -race builds: detects concurrent calls

	closeMu  sync.Mutex // serialises Close with Ring.Close's closeFromRing
	released bool       // under closeMu: the role and the heartbeat are released

	// MPSC recovery: when the consumer is blocked at an uncommitted
	// reservation, it asks ring.Recover at growing intervals.
	stallLimit   time.Duration
	blockedSince time.Time
	nextCheck    time.Time
	interval     time.Duration
	alive        func(slot int) bool

	side waitSide       // waiting for data
	pw   ring.WaitPoint // the producers' wait words, to wake them

	coalesce  time.Duration // ConsumerConfig.Coalesce
	holdUntil time.Time     // after a short batch: when the next may start

	stop, done chan struct{} // the heartbeat goroutine

	// gen counts the reading calls (Read, TryRead, Batch): an iterator
	// Batch returned yields only while gen is what it was then.
	gen uint64
	// The iterator of the last Batch: made once (no allocation per
	// Batch), its state here.
	seq      iter.Seq[Record]
	batchGen uint64 // gen of the Batch that returned seq
	batchMax int    // its max
	batchRan bool   // seq was ranged already: the second range yields nothing
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
	side, pol, err := cfg.Wait.waitSide(true)
	if err != nil {
		return nil, err
	}
	if cfg.StallLimit < 0 || cfg.Coalesce < 0 {
		return nil, fmt.Errorf("ipc: consumer stall limit %v and coalesce %v must not be negative: %w", cfg.StallLimit, cfg.Coalesce, errs.ErrInvalid)
	}
	c = pad.New[Consumer]()
	*c = Consumer{r: r, policy: pol, stallLimit: cfg.StallLimit, coalesce: cfg.Coalesce, side: side}
	if c.stallLimit == 0 {
		c.stallLimit = defaultStallLimit
	}
	c.alive = r.slotAlive
	c.seq = c.iterate
	c.side.wp = r.r.ConsumerWait()
	_, c.side.mode = r.r.Modes()
	c.side.peerAlive = r.producersAlive
	c.side.sliceCap = c.recoverIn
	c.side.depth = r.depth
	c.side.closed = &c.closed
	c.pw = r.r.ProducerWait()
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
	if c.rc, err = r.r.NewConsumer(); err != nil {
		return nil, fmt.Errorf("ipc: %q: %w", r.Path(), err)
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
	ok, err := c.rc.Recover(c.alive)
	if err != nil || ok {
		c.blockedSince = time.Time{}
		return ok, err
	}
	c.interval = min(2*c.interval, max(c.stallLimit/4, 100*time.Microsecond))
	c.nextCheck = now.Add(c.interval)
	return false, nil
}

// recoverIn bounds a park while the consumer is blocked at an uncommitted
// reservation: it must wake for its next liveness check.
func (c *Consumer) recoverIn() time.Duration {
	if c.blockedSince.IsZero() {
		return 0
	}
	return max(time.Until(c.nextCheck), 50*time.Microsecond)
}

// errNilFn is returned for a nil read callback.
var errNilFn = fmt.Errorf("ipc: read: the callback is nil; pass a function that takes each message: %w", errs.ErrInvalid)

// errClosed is what a call on a closed consumer returns.
func (c *Consumer) errClosed() error {
	return fmt.Errorf("ipc: %q: the consumer is closed (Consumer.Close or Ring.Close); take the role again with Ring.Consumer: %w", c.r.Path(), ErrClosed)
}

// TryRead delivers up to max messages to fn, in order, without waiting,
// and releases their space with one position store. It returns how many (0:
// the ring is empty, or max <= 0). Errors as for Read.
func (c *Consumer) TryRead(max int, fn func(msg []byte)) (int, error) {
	if c.closed.Load() {
		return 0, c.errClosed()
	}
	if fn == nil {
		return 0, errNilFn
	}
	if raceChecks {
		c.use.enter("Consumer", opTryRead)
		defer c.use.exit()
	}
	c.gen++
	return c.tryReadBatch(max, fn)
}

func (c *Consumer) tryReadBatch(max int, fn func(msg []byte)) (int, error) {
	start := c.rc.Position()
	n, err := c.rc.ReadBatch(max, fn)
	if n == 0 && err == nil && max > 0 {
		var ok bool
		if ok, err = c.recover(); ok && err == nil {
			n, err = c.rc.ReadBatch(max, fn)
		}
	}
	// Room was released (by delivering, or by skipping padding, duplicates
	// or a dead reservation) and a producer sleeps: wake it.
	if c.rc.Position() != start && c.pw.Parked.Load() != 0 {
		wake(c.pw)
	}
	return n, err
}

// Read waits until at least one message is available, then delivers up to
// max to fn, in order, and releases their space with one position store
// (Read(ctx, 1, fn) reads one message). It returns how many it delivered.
// It waits as the ConsumerConfig's Wait says, until ctx is done (a
// deadline: an error matching [context.DeadlineExceeded]; a cancellation:
// ctx's error), the Wait's hook ends the wait (its error, wrapped), or no
// producer has been attached for Wait.PeerTimeout ([ErrPeerDead]). max <= 0
// returns 0 at once. It returns [ErrClosed] after Close or when the Ring is
// closed while it waits, [ErrCorrupt] when the ring is damaged (the
// messages before the damage are delivered and counted first), and
// [io/fs.ErrInvalid] for a nil ctx or fn.
func (c *Consumer) Read(ctx context.Context, max int, fn func(msg []byte)) (n int, err error) {
	if err := c.readable(ctx, fn); err != nil {
		return 0, err
	}
	if raceChecks {
		c.use.enter("Consumer", opRead)
		defer c.use.exit()
	}
	c.gen++
	return c.readBatch(ctx, max, fn)
}

// readable checks a waiting read's arguments and the consumer's state.
func (c *Consumer) readable(ctx context.Context, fn func(msg []byte)) error {
	switch {
	case c.closed.Load():
		return c.errClosed()
	case fn == nil:
		return errNilFn
	case ctx == nil:
		return errNilContext
	}
	return nil
}

func (c *Consumer) readBatch(ctx context.Context, max int, fn func(msg []byte)) (n int, err error) {
	if c.coalesce > 0 {
		defer c.hold(max, &n)
		c.awaitHold()
	}
	n, err = c.tryReadBatch(max, fn)
	if n > 0 || err != nil || max <= 0 {
		return n, err
	}
	err = c.await(ctx, func() (bool, error) {
		n, err = c.tryReadBatch(max, fn)
		return n > 0, err
	})
	return n, err
}

// await waits, as the consumer's Wait says, until try reports done (or
// fails), ctx is done, the hook ends the wait, or the producers are gone.
// It registers the call as waiting until the counters are stored:
// Ring.Close wakes the wait and unmaps the segment only after endWait.
func (c *Consumer) await(ctx context.Context, try func() (bool, error)) error {
	if !c.r.beginWait(&c.closed) {
		return c.errClosed()
	}
	defer c.r.endWait()
	c.use.waiting()
	deadline, _ := ctx.Deadline()
	spins, yields, err := c.side.wait(ctx, c.policy, deadline, try)
	if err == errShut {
		return c.errClosed()
	}
	if spins+yields > 0 {
		c.rc.AddWaits(spins, yields)
	}
	return err
}

// awaitHold waits out a coalescing hold, if one is on: bounded by the
// coalescing delay; the ring is not touched.
func (c *Consumer) awaitHold() {
	if c.holdUntil.IsZero() {
		return
	}
	for time.Now().Before(c.holdUntil) {
		for range 16 {
			spin.Pause()
		}
	}
	c.holdUntil = time.Time{}
}

// hold starts a coalescing hold after a batch of n smaller than max.
func (c *Consumer) hold(max int, n *int) {
	if *n < max {
		c.holdUntil = time.Now().Add(c.coalesce)
	}
}

// SetWindow narrows the bytes producers may fill to window (credit, as
// reactive streams' request(n)), or widens it again; 0 gives them the whole
// capacity. A window smaller than a message stops that message until the
// window widens. Producers treat the window as the capacity from their next
// write; parked producers are woken to see a wider one. Safe for
// concurrent use, from any goroutine; ErrClosed after Close or Ring.Close.
func (c *Consumer) SetWindow(window uint64) error {
	if err := c.r.enter(); err != nil {
		return err
	}
	defer c.r.leave()
	if c.closed.Load() {
		return c.errClosed()
	}
	c.r.r.SetWindow(window)
	c.pw.Seq.Add(1)
	if c.pw.Parked.Load() != 0 {
		wake(c.pw)
	}
	return nil
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
func (c *Consumer) shut() { c.closed.Store(true) }

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
