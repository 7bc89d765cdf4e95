package ipc

import (
	"context"
	"errors"
	"fmt"

	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// ProducerOption configures a Producer.
type ProducerOption func(*Producer)

// WithPolicy sets what the producer does when a message does not fit:
// Spin (default), Drop or Backoff.
func WithPolicy(p Policy) ProducerOption { return func(pr *Producer) { pr.policy = p } }

// Producer writes messages into a ring. It is not safe for concurrent use:
// one goroutine writes. An SPSC ring has at most one Producer at a time
// across all processes; a second gets ErrBusy.
type Producer struct {
	r      *Ring
	rp     *ring.Producer
	lock   *shm.Lock
	policy Policy
	closed bool
}

// Producer takes the producer role of the ring. The role is held by an
// open-file-description lock on the segment, which the kernel drops if this
// process dies, so a restarted producer can take it again.
func (r *Ring) Producer(opts ...ProducerOption) (p *Producer, err error) {
	p = &Producer{r: r, policy: Spin}
	for _, o := range opts {
		o(p)
	}
	if p.policy != Spin && p.policy != Drop && p.policy != Backoff {
		return nil, fmt.Errorf("ipc: producer policy %v is not one of spin, drop, backoff", p.policy)
	}
	if p.lock, err = r.lockRole(ring.ProducerLine, "producer"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = p.lock.Unlock()
		}
	}()
	if p.rp, err = r.r.NewProducer(); err != nil {
		return nil, fmt.Errorf("ipc: %q: %w", r.Path(), err)
	}
	if err = r.register(p); err != nil {
		return nil, err
	}
	return p, nil
}

// Policy returns the producer's policy.
func (p *Producer) Policy() Policy { return p.policy }

// Write writes msg as one message, applying the producer's policy when the
// ring is full: Spin and Backoff wait for room, Drop returns ErrFull and
// counts the drop. It returns ErrTooLarge for a message above MaxMessage.
func (p *Producer) Write(msg []byte) error {
	return p.WriteContext(context.Background(), msg)
}

// WriteContext is Write that stops waiting when ctx is done, returning
// ErrTimeout for a passed deadline or the context's error. The message is
// then not written, and counts as dropped.
func (p *Producer) WriteContext(ctx context.Context, msg []byte) error {
	if p.closed {
		return ErrClosed
	}
	err := p.rp.TryWrite(msg)
	if err != ring.ErrFull {
		return err
	}
	return p.waitFor(ctx, func() error { return p.rp.TryWrite(msg) })
}

// waitFor applies the policy after a first attempt found the ring full.
func (p *Producer) waitFor(ctx context.Context, try func() error) error {
	p.rp.AddFullEvent()
	if p.policy == Drop {
		p.rp.AddDrops(1)
		return ErrFull
	}
	w := waiter{policy: p.policy}
	for {
		if err := w.next(ctx); err != nil {
			p.rp.AddSpins(w.n)
			p.rp.AddDrops(1)
			return err
		}
		err := try()
		if err != ring.ErrFull {
			p.rp.AddSpins(w.n)
			return err
		}
	}
}

// TryWrite writes msg if it fits and returns ErrFull otherwise, whatever the
// policy. A refused message is counted as a full event, not as a drop: the
// caller still has it.
func (p *Producer) TryWrite(msg []byte) error {
	if p.closed {
		return ErrClosed
	}
	err := p.rp.TryWrite(msg)
	if err == ring.ErrFull {
		p.rp.AddFullEvent()
	}
	return err
}

// WriteBatch writes msgs in order, publishing each run that fits with one
// position store. Under Spin and Backoff it waits for room until all are
// written (or ctx-free: forever); under Drop it writes what fits, counts
// the rest as drops, and returns ErrFull with the number written.
func (p *Producer) WriteBatch(msgs [][]byte) (int, error) {
	if p.closed {
		return 0, ErrClosed
	}
	var done int
	for done < len(msgs) {
		n, err := p.rp.WriteBatch(msgs[done:])
		done += n
		if err == nil {
			continue
		}
		if err != ring.ErrFull {
			return done, err
		}
		if p.policy == Drop {
			p.rp.AddFullEvent()
			p.rp.AddDrops(uint64(len(msgs) - done))
			return done, ErrFull
		}
		var k int
		err = p.waitFor(context.Background(), func() error {
			var e error
			k, e = p.rp.WriteBatch(msgs[done:])
			return e
		})
		done += k
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Claim reserves room for an n-byte message and returns the slice to fill,
// inside the ring (zero-copy); Commit publishes it, Abort gives the room
// back. When the ring is full the policy applies as for Write. The slice
// must not be used after Commit or Abort.
func (p *Producer) Claim(n int) ([]byte, error) {
	if p.closed {
		return nil, ErrClosed
	}
	b, err := p.rp.Claim(n)
	if err != ring.ErrFull {
		return b, err
	}
	err = p.waitFor(context.Background(), func() error {
		var e error
		b, e = p.rp.Claim(n)
		return e
	})
	return b, err
}

// Commit publishes the claimed message.
func (p *Producer) Commit() error { return p.rp.Commit() }

// CommitN publishes the first n bytes of the claimed message.
func (p *Producer) CommitN(n int) error { return p.rp.CommitN(n) }

// Abort abandons the claimed message.
func (p *Producer) Abort() { p.rp.Abort() }

// Close releases the producer role. A claim still outstanding is abandoned.
// Close is idempotent.
func (p *Producer) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	p.rp.Abort()
	p.r.unregister(p)
	return errors.Join(p.lock.Unlock())
}
