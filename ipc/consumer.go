package ipc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/pad"
	"github.com/shmring/shmring/internal/spin"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// ConsumerOption configures a Consumer.
type ConsumerOption func(*Consumer)

// WithWait sets how the consumer waits for data: Hybrid (default), Spin,
// Yield, Park, Block (Park bounded by the context's deadline) or Backoff.
func WithWait(p Policy) ConsumerOption { return func(c *Consumer) { c.policy = p } }

// WithConsumerHybrid sets the consumer's Hybrid phases: spins busy-wait
// iterations, then yields, then park (defaults 2000 and 50).
func WithConsumerHybrid(spins, yields int) ConsumerOption {
	return func(c *Consumer) { c.side.hybridSpins, c.side.hybridYield = spins, yields }
}

// WithConsumerWaitHook installs a hook a waiting consumer consults every few
// milliseconds at most: it may keep waiting, give up (ErrTimeout) or fail
// (ErrWaitAborted). It runs on the reading goroutine and must not block.
func WithConsumerWaitHook(hook func(WaitInfo) WaitDecision) ConsumerOption {
	return func(c *Consumer) { c.side.hook = hook }
}

// WithCoalesce makes ReadBatch, after a batch smaller than its max (the
// consumer has caught up with the producers), hold off for d before it
// looks at the ring again, without touching the ring's memory meanwhile.
// A consumer that catches up after every few messages and polls at once
// takes the producers' cache lines away from them at every poll; holding
// off lets them write many messages per transfer. It trades latency (a
// message may wait up to d longer) for throughput: the harness measures
// the trade (docs/benchmarks.md). A full batch is never held; 0 turns it
// off (the default).
func WithCoalesce(d time.Duration) ConsumerOption { return func(c *Consumer) { c.coalesce = d } }

// WithConsumerPeerTimeout sets how long the consumer waits for data while
// no producer is attached before it returns ErrPeerDead (default 1 s).
func WithConsumerPeerTimeout(d time.Duration) ConsumerOption {
	return func(c *Consumer) { c.side.peerTimeout = d }
}

// DefaultStallLimit bounds how long a dead producer's reservation can hold
// up an MPSC consumer.
const DefaultStallLimit = time.Second

// WithStallLimit sets the longest an MPSC consumer waits at a reservation
// whose producer has died before it skips it (counted in Stats.Lost).
// Liveness is checked from the first millisecond on, at growing intervals up
// to a quarter of d, so a dead producer is usually skipped within a few
// milliseconds; a live producer is never skipped, however slow.
func WithStallLimit(d time.Duration) ConsumerOption {
	return func(c *Consumer) { c.stallLimit = d }
}

// Consumer reads messages from a ring. A ring has at most one Consumer at
// a time across all processes; a second gets ErrBusy.
//
// Concurrency: a Consumer is not safe for concurrent use. Its reading
// methods (Read, ReadBatch, TryRead, TryReadBatch) and Close are called by
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
// returns ErrInvalid.
//
// After Close, or after its Ring's Close, every method returns ErrClosed. A
// read waiting for data when the Ring is closed returns ErrClosed; see Ring
// for the rest of Ring.Close's contract.
type Consumer struct {
	r      *Ring
	rc     *ring.Consumer
	lock   *shm.Lock
	policy Policy
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

	side waitSide       // waiting for data
	pw   ring.WaitPoint // the producers' wait words, to wake them

	coalesce  time.Duration // WithCoalesce
	holdUntil time.Time     // after a short batch: when the next may start

	stop, done chan struct{} // the heartbeat goroutine

}

// Consumer takes the consumer role of the ring and resumes at the position
// the previous consumer released.
func (r *Ring) Consumer(opts ...ConsumerOption) (*Consumer, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	return r.newConsumer(opts...)
}

func (r *Ring) newConsumer(opts ...ConsumerOption) (c *Consumer, err error) {
	c = pad.New[Consumer]()
	*c = Consumer{r: r, policy: Hybrid, stallLimit: DefaultStallLimit,
		side: waitSide{hybridSpins: defaultHybridSpins, hybridYield: defaultHybridYield, peerTimeout: DefaultPeerTimeout, consumer: true}}
	for _, o := range opts {
		o(c)
	}
	if !c.policy.waits() {
		return nil, fmt.Errorf("ipc: consumer wait policy %v: want spin, yield, park, block, hybrid or backoff", c.policy)
	}
	if c.stallLimit <= 0 || c.side.peerTimeout <= 0 || c.side.hybridSpins < 0 || c.side.hybridYield < 0 {
		return nil, fmt.Errorf("ipc: consumer stall limit and peer timeout must be positive, hybrid phases not negative")
	}
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
	ok, err := c.rc.Recover()
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
var errNilFn = fmt.Errorf("ipc: read: the callback is nil; pass a function that takes each message: %w", ErrInvalid)

// errClosed is what a call on a closed consumer returns.
func (c *Consumer) errClosed() error {
	return fmt.Errorf("ipc: %q: the consumer is closed (Consumer.Close or Ring.Close); take the role again with Ring.Consumer: %w", c.r.Path(), ErrClosed)
}

// TryRead delivers at most one message to fn without waiting; it returns
// false if the ring is empty.
func (c *Consumer) TryRead(fn func(msg []byte)) (bool, error) {
	if c.closed.Load() {
		return false, c.errClosed()
	}
	if fn == nil {
		return false, errNilFn
	}
	if raceChecks {
		c.use.enter("Consumer", opTryRead)
		defer c.use.exit()
	}
	n, err := c.tryReadBatch(1, fn)
	return n == 1, err
}

// TryReadBatch delivers up to max messages to fn without waiting and
// releases their space with one position store. It returns how many.
func (c *Consumer) TryReadBatch(max int, fn func(msg []byte)) (int, error) {
	if c.closed.Load() {
		return 0, c.errClosed()
	}
	if fn == nil {
		return 0, errNilFn
	}
	if raceChecks {
		c.use.enter("Consumer", opTryReadBatch)
		defer c.use.exit()
	}
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

// Read waits for one message and delivers it to fn. It returns ErrTimeout
// when ctx's deadline passes first, or the context's error; ErrClosed
// after Close, or when the Ring is closed while it waits.
func (c *Consumer) Read(ctx context.Context, fn func(msg []byte)) error {
	if err := c.readable(ctx, fn); err != nil {
		return err
	}
	if raceChecks {
		c.use.enter("Consumer", opRead)
		defer c.use.exit()
	}
	_, err := c.readBatch(ctx, 1, fn)
	return err
}

// ReadBatch waits until at least one message is available, then delivers up
// to max to fn and releases them with one position store.
func (c *Consumer) ReadBatch(ctx context.Context, max int, fn func(msg []byte)) (n int, err error) {
	if err := c.readable(ctx, fn); err != nil {
		return 0, err
	}
	if raceChecks {
		c.use.enter("Consumer", opReadBatch)
		defer c.use.exit()
	}
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
		if !c.holdUntil.IsZero() {
			// Bounded by the coalescing delay; the ring is not touched.
			for time.Now().Before(c.holdUntil) {
				for range 16 {
					spin.Pause()
				}
			}
			c.holdUntil = time.Time{}
		}
	}
	n, err = c.tryReadBatch(max, fn)
	if n > 0 || err != nil || max <= 0 {
		return n, err
	}
	// Registered as waiting until the counters are stored: Ring.Close
	// wakes the wait and unmaps the segment only after endWait.
	if !c.r.beginWait(&c.closed) {
		return 0, c.errClosed()
	}
	defer c.r.endWait()
	c.use.waiting()
	var deadline time.Time
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	spins, yields, err := c.side.wait(ctx, c.policy, deadline, func() (bool, error) {
		n, err = c.tryReadBatch(max, fn)
		return n > 0, err
	})
	if err == errShut {
		return 0, c.errClosed()
	}
	if spins+yields > 0 {
		c.rc.AddWaits(spins, yields)
	}
	return n, err
}

// hold starts a coalescing hold after a batch of n smaller than max.
func (c *Consumer) hold(max int, n *int) {
	if *n < max {
		c.holdUntil = time.Now().Add(c.coalesce)
	}
}

// SetWindow narrows the bytes producers may fill to window (credit, as
// reactive streams' request(n)), or widens it again; 0 gives them the whole
// capacity. Producers treat the window as the capacity from their next
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
