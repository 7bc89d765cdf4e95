package ipc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/ring"
)

// Write writes msg as one message. When it does not fit, the
// ProducerConfig decides: Overflow hands it to the route; Full Drop returns
// [ErrFull] at once; Full DropOldest reclaims the oldest messages; else the
// producer waits for room as its Wait says, until ctx is done (a deadline:
// an error matching [context.DeadlineExceeded]; a cancellation: ctx's
// error), the Wait's hook ends the wait, or no consumer has been attached
// for Wait.PeerTimeout ([ErrPeerDead]). Once a wait has returned
// ErrPeerDead, a later write that finds the ring full and still no consumer
// returns ErrPeerDead at once rather than waiting out the peer timeout
// again; a consumer's return ends that. A message that is not written
// counts as dropped, unless the hook ended the wait with an error of its
// own or the ring is damaged.
//
// The default wait is not forever: a producer started more than
// Wait.PeerTimeout (1 s by default) before its consumer gets ErrPeerDead,
// and a counted drop, once the ring fills. Raise PeerTimeout for processes
// that start far apart (see the package doc, "Two processes").
//
// ctx is looked at only when the message does not fit: a write that finds
// room costs no context call. A nil ctx returns [io/fs.ErrInvalid]. It
// returns [ErrTooLarge] for a message above Stats.MaxMessage, [ErrClosed]
// after Close or when the Ring is closed while it waits, [ErrCorrupt] when
// the ring is damaged.
func (p *Producer) Write(ctx context.Context, msg []byte) error {
	// One test for the cases that are not a plain write, so that the
	// path of a write that finds room spills its arguments once (for
	// writeFull) and makes one call, ring.Producer.TryWrite (issue 17).
	if p.closed.Load() || ctx == nil || raceChecks {
		return p.writeChecked(ctx, msg)
	}
	if err := p.rp.TryWrite(msg); err != nil {
		return p.writeFull(ctx, msg, err)
	}
	p.published()
	return nil
}

// writeChecked is Write for a closed producer, a nil ctx, or a -race
// build (whose use guard watches the whole call).
func (p *Producer) writeChecked(ctx context.Context, msg []byte) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if ctx == nil {
		return errNilContext
	}
	if raceChecks {
		p.use.enter("Producer", opWrite)
		defer p.use.exit()
	}
	if err := p.rp.TryWrite(msg); err != nil {
		return p.writeFull(ctx, msg, err)
	}
	p.published()
	return nil
}

// writeFull is the rest of a Write whose first attempt returned err: the
// error, or the policy if the ring is full (out of Write, so that a write
// that finds room makes one call, ring.Producer.TryWrite).
func (p *Producer) writeFull(ctx context.Context, msg []byte, err error) error {
	if err != ring.ErrFull {
		return err
	}
	return p.waitFor(ctx, 1, func() (bool, error) { return notFull(p.rp.TryWrite(msg)) },
		func() error { return p.overflow(msg) },
		func() error { _, err := p.rp.TryWriteOverwrite(msg); return err })
}

// WriteSeq is Write with the message's sequence number given, in a ring
// created with Config.Sequences: send a message you may already have sent
// (before a crash) with its original sequence, and the consumer discards it
// if it was delivered. A producer's sequences must increase, except that
// the messages InDoubt names are resent first, from its start. Under Full
// DropOldest a message that does not fit is dropped (ErrFull, counted)
// rather than reclaiming older ones.
func (p *Producer) WriteSeq(ctx context.Context, seq uint64, msg []byte) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if ctx == nil {
		return errNilContext
	}
	if raceChecks {
		p.use.enter("Producer", opWriteSeq)
		defer p.use.exit()
	}
	if !p.r.r.Sequences() {
		return fmt.Errorf("ipc: %q was created without sequences (Config.Sequences): %w", p.r.Path(), errs.ErrInvalid)
	}
	err := p.rp.TryWriteSeq(seq, msg)
	if err == nil {
		p.published()
		return nil
	}
	if err != ring.ErrFull {
		return err
	}
	return p.waitFor(ctx, 1, func() (bool, error) { return notFull(p.rp.TryWriteSeq(seq, msg)) },
		func() error { return p.overflow(msg) })
}

// notFull turns the result of a non-blocking attempt into a wait's
// (done, error): ErrFull means "not yet", anything else ends the wait.
func notFull(err error) (bool, error) {
	if err == ring.ErrFull {
		return false, nil
	}
	return true, err
}

// published is called after every successful write: one load of the
// consumer's parked flag, and a wake only if it sleeps; then the soft level.
// Small enough to inline: the wake and the throttle are in wakeOrThrottle.
func (p *Producer) published() {
	if p.cw.Parked.Load() != 0 || p.throttle > 0 {
		p.wakeOrThrottle()
	}
}

// wakeOrThrottle is published's work when the consumer is parked or the
// producer has a throttle.
func (p *Producer) wakeOrThrottle() {
	if p.cw.Parked.Load() != 0 {
		if p.bell != nil {
			p.bell.wake(p.cw)
		} else {
			wake(p.cw)
		}
	}
	if p.throttle > 0 && p.rp.Pressure() != 0 {
		time.Sleep(p.throttle)
	}
}

// waitFor applies the policy after a first attempt found the ring full;
// pending is how many messages are dropped if it gives up, route hands them
// to the overflow route (nil where there is no message yet: a claim).
//
// It registers the call as waiting (Ring.beginWait) for its whole run,
// counters included: Ring.Close wakes it and waits for it, and it returns
// ErrClosed, touching the segment no more, once the producer is shut.
func (p *Producer) waitFor(ctx context.Context, pending int, try func() (bool, error), route func() error, overwrite ...func() error) error {
	if !p.r.beginWait(&p.closed) {
		return p.errClosed()
	}
	defer p.r.endWait()
	p.use.waiting()
	p.rp.AddFullEvent()
	var overwriteFn func() error
	if len(overwrite) > 0 {
		overwriteFn = overwrite[0]
	}
	policy := p.side.effective(p.policy)
	var spins, yields uint64
	var err error
	switch policy {
	case pDropOldest:
		if overwriteFn != nil && p.r.r.Overwrite() {
			if err = overwriteFn(); err == nil {
				p.published()
			}
			return err
		}
		p.rp.AddDrops(uint64(pending))
		return ErrFull
	case pDrop, pOverflow:
		err = ErrFull
	default:
		// Every waiting policy (an override of block included) is bounded
		// by the caller's context alone.
		deadline, _ := ctx.Deadline()
		spins, yields, err = p.side.wait(ctx, policy, deadline, try)
		if err == errShut {
			return p.errClosed() // the ring is closing: count nothing
		}
		p.rp.AddWaitCounts(spins, yields)
	}
	switch {
	case err == nil:
		p.published()
		return nil
	case err == ErrFull && route != nil && p.overflow != nil && p.side.effective(p.policy) == pOverflow:
		p.rp.AddOverflowed(uint64(pending))
		return route()
	case errors.Is(err, ring.ErrCorrupt), errors.Is(err, ErrTooLarge), isHookError(err):
		return err
	}
	p.rp.AddDrops(uint64(pending))
	return err
}

// TryWrite writes msg if it fits and returns [ErrFull] otherwise, whatever
// the ProducerConfig says: it never waits, drops, reclaims or overflows. A
// refused message is counted as a full event, not as a drop: the caller
// still has it. ErrTooLarge and ErrClosed as for Write.
func (p *Producer) TryWrite(msg []byte) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opTryWrite)
		defer p.use.exit()
	}
	err := p.rp.TryWrite(msg)
	switch err {
	case nil:
		p.published()
	case ring.ErrFull:
		p.rp.AddFullEvent()
	}
	return err
}
