package ipc

import (
	"context"
	"fmt"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/internal/spin"
)

// errNilFn is returned for a nil read callback.
var errNilFn = fmt.Errorf("ipc: read: the callback is nil; pass a function that takes each message: %w", errs.ErrInvalid)

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
	if c.held {
		return 0, errHeldRead
	}
	if raceChecks {
		c.use.enter("Consumer", opTryRead)
		defer c.use.exit()
	}
	// tryReadBatch, written out: a call less on every TryRead (issue 17).
	start := c.rc.Position()
	var n int
	var err error
	if max == 1 {
		// One message: the ring's one-record read, without the batch's
		// bookkeeping (issue 17).
		var ok bool
		if ok, err = c.rc.TryRead(fn); ok {
			n = 1
		}
	} else {
		n, err = c.rc.ReadBatch(max, fn)
	}
	if n == 0 && err == nil && max > 0 {
		n, err = c.retryRead(max, fn)
	}
	if c.rc.Position() != start && c.pw.Parked.Load() != 0 {
		wake(c.pw)
	}
	return n, err
}

// tryReadBatch reads up to max messages without waiting (ring.ReadBatch),
// trying once more after recovery if an MPSC reservation blocked it, and
// wakes a sleeping producer if it released room.
func (c *Consumer) tryReadBatch(max int, fn func(msg []byte)) (int, error) {
	start := c.rc.Position()
	var n int
	var err error
	if max == 1 {
		// One message: the ring's one-record read, as in TryRead.
		var ok bool
		if ok, err = c.rc.TryRead(fn); ok {
			n = 1
		}
	} else {
		n, err = c.rc.ReadBatch(max, fn)
	}
	if n == 0 && err == nil && max > 0 {
		n, err = c.retryRead(max, fn)
	}
	// Room was released (by delivering, or by skipping padding, duplicates
	// or a dead reservation) and a producer sleeps: one load of its parked
	// word, a wake (a system call) only if it is set.
	if c.rc.Position() != start && c.pw.Parked.Load() != 0 {
		wake(c.pw)
	}
	return n, err
}

// wakeProducers wakes a sleeping producer if the consumer's position moved
// from start: room was released. One load of the parked word; a wake (a
// system call) only if it is set.
func (c *Consumer) wakeProducers(start uint64) {
	if c.rc.Position() != start && c.pw.Parked.Load() != 0 {
		wake(c.pw)
	}
}

// retryRead is the read of a batch that found nothing: if the consumer is
// blocked at an uncommitted MPSC reservation whose owner recovery finds
// dead, it reads again past it.
func (c *Consumer) retryRead(max int, fn func(msg []byte)) (int, error) {
	ok, err := c.recover()
	if ok && err == nil {
		return c.rc.ReadBatch(max, fn)
	}
	return 0, err
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
// [io/fs.ErrInvalid] for a nil ctx or fn. The default wait is not forever:
// a consumer started more than Wait.PeerTimeout (1 s) before its producer
// gets ErrPeerDead (see the package doc, "Two processes").
func (c *Consumer) Read(ctx context.Context, max int, fn func(msg []byte)) (n int, err error) {
	if err := c.readable(ctx, fn); err != nil {
		return 0, err
	}
	if raceChecks {
		c.use.enter("Consumer", opRead)
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
	case c.held:
		return errHeldRead
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
		c.rc.AddWaitCounts(spins, yields)
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

// hold starts a coalescing hold after a batch of n smaller than max,
// unless a Batch loop broke (it ended the batch, not an empty ring).
func (c *Consumer) hold(max int, n *int) {
	if *n < max && !c.broke {
		c.holdUntil = time.Now().Add(c.coalesce)
	}
	c.broke = false
}
