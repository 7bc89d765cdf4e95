package ipc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// ProducerOption configures a Producer.
type ProducerOption func(*Producer)

// WithPolicy sets what the producer does when a message does not fit:
// Spin (default), Drop or Backoff.
func WithPolicy(p Policy) ProducerOption { return func(pr *Producer) { pr.policy = p } }

// WithProducerID asks for MPSC producer slot id (0 to Slots()-1), so that a
// restarted producer takes back its own slot and its counters. Without it
// the producer takes the first free slot.
func WithProducerID(id int) ProducerOption { return func(pr *Producer) { pr.slot = id } }

// Producer writes messages into a ring. It is not safe for concurrent use:
// one goroutine writes. An SPSC ring has at most one Producer at a time
// across all processes (a second gets ErrBusy); an MPSC ring has one per
// slot, up to Slots() at once, in any number of processes.
type Producer struct {
	r      *Ring
	rp     *ring.Producer
	lock   *shm.Lock
	policy Policy
	slot   int // MPSC: requested, then held slot; -1 for any
	closed bool
	stop   chan struct{} // MPSC: ends the heartbeat goroutine
	done   chan struct{}
}

// Producer takes the producer role of the ring. The role is held by an
// open-file-description lock on the segment, which the kernel drops if this
// process dies, so a restarted producer can take it again.
func (r *Ring) Producer(opts ...ProducerOption) (p *Producer, err error) {
	p = &Producer{r: r, policy: Spin, slot: -1}
	for _, o := range opts {
		o(p)
	}
	if p.policy != Spin && p.policy != Drop && p.policy != Backoff {
		return nil, fmt.Errorf("ipc: producer policy %v is not one of spin, drop, backoff", p.policy)
	}
	if r.Kind() == MPSC {
		err = p.takeSlot()
	} else {
		if p.slot > 0 {
			return nil, fmt.Errorf("ipc: %q is an spsc ring: it has no producer slots (asked for %d)", r.Path(), p.slot)
		}
		p.slot = 0
		if p.lock, err = r.lockRole(ring.ProducerLine, "producer"); err == nil {
			if p.rp, err = r.r.NewProducer(); err != nil {
				err = fmt.Errorf("ipc: %q: %w", r.Path(), err)
			}
		}
	}
	if err == nil {
		err = r.register(p)
	}
	if err != nil {
		_ = p.lock.Unlock()
		return nil, err
	}
	if p.stop != nil {
		go p.heartbeat()
	}
	return p, nil
}

// takeSlot takes an MPSC producer slot: the one asked for, or the first
// free one. Holding the slot's lock is holding the slot; the kernel drops it
// when this process dies, which is how the consumer tells a dead producer
// from a slow one.
func (p *Producer) takeSlot() error {
	r := p.r
	n := r.r.Slots()
	if p.slot >= n {
		return fmt.Errorf("ipc: %q has producer slots 0 to %d; %d is out of range", r.Path(), n-1, p.slot)
	}
	try := func(i int) error {
		l, err := r.seg.Lock(int64(r.r.SlotOffset(i)), ring.LineSize)
		if err != nil {
			return err
		}
		p.lock, p.slot = l, i
		return nil
	}
	if p.slot >= 0 {
		if err := try(p.slot); err != nil {
			if errors.Is(err, shm.ErrBusy) {
				return fmt.Errorf("ipc: %q producer slot %d is held by a live process: %w", r.Path(), p.slot, ErrBusy)
			}
			return err
		}
	} else {
		var err error
		for i := 0; i < n; i++ {
			if err = try(i); err == nil || !errors.Is(err, shm.ErrBusy) {
				break
			}
		}
		if err != nil {
			if errors.Is(err, shm.ErrBusy) {
				return fmt.Errorf("ipc: %q has all %d producer slots held by live processes; close a producer or create the ring with more (ringctl create --producers): %w", r.Path(), n, ErrBusy)
			}
			return err
		}
	}
	start, err := proc.StartTime(os.Getpid())
	if err != nil {
		return fmt.Errorf("ipc: read this process's start time: %w", err)
	}
	r.r.SetSlotOwner(p.slot, uint32(os.Getpid()), start, time.Now().UnixNano())
	if p.rp, err = r.r.NewSlotProducer(p.slot); err != nil {
		return fmt.Errorf("ipc: %q: %w", r.Path(), err)
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	return nil
}

// heartbeatEvery is how often an MPSC producer refreshes its slot's
// heartbeat (for display: liveness comes from the slot's lock).
const heartbeatEvery = time.Second

func (p *Producer) heartbeat() {
	defer close(p.done)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.r.r.Heartbeat(p.slot, now.UnixNano())
		}
	}
}

// Slot returns the producer's MPSC slot (0 for an SPSC ring).
func (p *Producer) Slot() int { return p.slot }

// Stats returns the counters of this producer's slot (MPSC) or of the
// ring's producer (SPSC): what this producer ID has written across restarts.
func (p *Producer) Stats() ring.SlotStats {
	if p.r.Kind() == MPSC {
		return p.r.r.Slot(p.slot)
	}
	st := p.r.r.Stats()
	return ring.SlotStats{MsgsIn: st.MsgsIn, BytesIn: st.BytesIn, FullEvents: st.FullEvents, Drops: st.Drops, Spins: st.Spins}
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
	if p.stop != nil {
		close(p.stop)
		<-p.done
	}
	p.r.unregister(p)
	return errors.Join(p.lock.Unlock())
}
