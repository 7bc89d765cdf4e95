package ipc

import (
	"context"
	"errors"
	"fmt"

	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// ConsumerOption configures a Consumer.
type ConsumerOption func(*Consumer)

// WithWait sets how the consumer waits for data: Backoff (default) or Spin.
func WithWait(p Policy) ConsumerOption { return func(c *Consumer) { c.policy = p } }

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
}

// Consumer takes the consumer role of the ring and resumes at the position
// the previous consumer released.
func (r *Ring) Consumer(opts ...ConsumerOption) (c *Consumer, err error) {
	c = &Consumer{r: r, policy: Backoff}
	for _, o := range opts {
		o(c)
	}
	if c.policy != Spin && c.policy != Backoff {
		return nil, fmt.Errorf("ipc: consumer wait policy %v is not spin or backoff", c.policy)
	}
	if c.lock, err = r.lockRole(ring.ConsumerLine, "consumer"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.lock.Unlock()
		}
	}()
	if c.rc, err = r.r.NewConsumer(); err != nil {
		return nil, fmt.Errorf("ipc: %q: %w", r.Path(), err)
	}
	if err = r.register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// TryRead delivers at most one message to fn without waiting; it returns
// false if the ring is empty.
func (c *Consumer) TryRead(fn func(msg []byte)) (bool, error) {
	if c.closed {
		return false, ErrClosed
	}
	return c.rc.TryRead(fn)
}

// TryReadBatch delivers up to max messages to fn without waiting and
// releases their space with one position store. It returns how many.
func (c *Consumer) TryReadBatch(max int, fn func(msg []byte)) (int, error) {
	if c.closed {
		return 0, ErrClosed
	}
	return c.rc.ReadBatch(max, fn)
}

// Read waits for one message and delivers it to fn. It returns ErrTimeout
// when ctx's deadline passes first, or the context's error.
func (c *Consumer) Read(ctx context.Context, fn func(msg []byte)) error {
	_, err := c.ReadBatch(ctx, 1, fn)
	return err
}

// ReadBatch waits until at least one message is available, then delivers up
// to max to fn and releases them with one position store.
func (c *Consumer) ReadBatch(ctx context.Context, max int, fn func(msg []byte)) (int, error) {
	if c.closed {
		return 0, ErrClosed
	}
	n, err := c.rc.ReadBatch(max, fn)
	if n > 0 || err != nil || max <= 0 {
		return n, err
	}
	w := waiter{policy: c.policy}
	for {
		if err := w.next(ctx); err != nil {
			return 0, err
		}
		if n, err := c.rc.ReadBatch(max, fn); n > 0 || err != nil {
			return n, err
		}
	}
}

// Close releases the consumer role; the next consumer resumes where this
// one released. Close is idempotent.
func (c *Consumer) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.r.unregister(c)
	return errors.Join(c.lock.Unlock())
}
