package ipc

import (
	"context"
	"errors"
	"fmt"
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

// Consumer reads messages from a ring. It is not safe for concurrent use:
// one goroutine reads. A ring has at most one Consumer at a time across all
// processes; a second gets ErrBusy.
//
// Messages are delivered to a callback as a slice into the ring, valid only
// until the callback returns. The callback runs on the calling goroutine and
// must not call the Consumer's methods.
type Consumer struct {
	r      *Ring
	rc     *ring.Consumer
	lock   *shm.Lock
	policy Policy
	closed bool

	// MPSC recovery: when the consumer is blocked at an uncommitted
	// reservation, it asks ring.Recover at growing intervals.
	stallLimit   time.Duration
	blockedSince time.Time
	nextCheck    time.Time
	interval     time.Duration
	alive        func(slot int) bool

	side waitSide       // waiting for data
	pw   ring.WaitPoint // the producers' wait words, to wake them

	coalesce  time.Duration // WithCoalesce
	holdUntil time.Time     // after a short batch: when the next may start

	stop, done chan struct{} // the heartbeat goroutine

}

// Consumer takes the consumer role of the ring and resumes at the position
// the previous consumer released.
func (r *Ring) Consumer(opts ...ConsumerOption) (c *Consumer, err error) {
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
	c.alive = r.slotAlive
	c.side.wp = r.r.ConsumerWait()
	_, c.side.mode = r.r.Modes()
	c.side.peerAlive = r.producersAlive
	c.side.sliceCap = c.recoverIn
	c.side.depth = r.depth
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

// TryRead delivers at most one message to fn without waiting; it returns
// false if the ring is empty.
func (c *Consumer) TryRead(fn func(msg []byte)) (bool, error) {
	n, err := c.TryReadBatch(1, fn)
	return n == 1, err
}

// TryReadBatch delivers up to max messages to fn without waiting and
// releases their space with one position store. It returns how many.
func (c *Consumer) TryReadBatch(max int, fn func(msg []byte)) (int, error) {
	if c.closed {
		return 0, ErrClosed
	}
	n, err := c.rc.ReadBatch(max, fn)
	if n == 0 && err == nil && max > 0 {
		var ok bool
		if ok, err = c.recover(); ok && err == nil {
			n, err = c.rc.ReadBatch(max, fn)
		}
	}
	if n > 0 && c.pw.Parked.Load() != 0 {
		wake(c.pw) // room was released and a producer sleeps
	}
	return n, err
}

// Read waits for one message and delivers it to fn. It returns ErrTimeout
// when ctx's deadline passes first, or the context's error.
func (c *Consumer) Read(ctx context.Context, fn func(msg []byte)) error {
	_, err := c.ReadBatch(ctx, 1, fn)
	return err
}

// ReadBatch waits until at least one message is available, then delivers up
// to max to fn and releases them with one position store.
func (c *Consumer) ReadBatch(ctx context.Context, max int, fn func(msg []byte)) (n int, err error) {
	if c.closed {
		return 0, ErrClosed
	}
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
	n, err = c.TryReadBatch(max, fn)
	if n > 0 || err != nil || max <= 0 {
		return n, err
	}
	var deadline time.Time
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	spins, yields, err := c.side.wait(ctx, c.policy, deadline, func() (bool, error) {
		n, err = c.TryReadBatch(max, fn)
		return n > 0, err
	})
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
// write; parked producers are woken to see a wider one.
func (c *Consumer) SetWindow(window uint64) {
	c.r.r.SetWindow(window)
	c.pw.Seq.Add(1)
	if c.pw.Parked.Load() != 0 {
		wake(c.pw)
	}
}

// Close releases the consumer role; the next consumer resumes where this
// one released. Close is idempotent.
func (c *Consumer) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.stop != nil {
		close(c.stop)
		<-c.done
	}
	c.r.unregister(c)
	return errors.Join(c.lock.Unlock())
}
