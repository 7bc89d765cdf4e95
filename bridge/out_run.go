package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Run publishes the ring's messages until ctx is done (it releases what is
// acknowledged and returns nil), the ring fails (closed, damaged: it
// returns the error), or the stream refuses a publish in a way no retry
// can cure (it returns an error naming the message, the cause and the fix,
// the message staying in the ring): a message larger than the server's
// max_payload or the stream's MaxMsgSize; with OutConfig.StrictOrder,
// another writer of the stream; the server refusing the bridge's publishes
// or its subscription to their acknowledgements for want of permissions
// (nats.ErrPermissionViolation). It reads with a held Batch, publishes each
// message asynchronously with its Nats-Msg-Id (on its producer slot's
// connection: OutConfig.Conns), keeps at most
// OutConfig.Window unacknowledged, and releases the ring up to the last
// message whose acknowledgement and every earlier one's have arrived.
// Everything else on the NATS side (a publish refused, an acknowledgement
// timed out, the server gone, on any connection) is counted in Stats.Errors
// and retried with a growing pause (up to a second) once every connection
// is connected: the window is published again from the released position, the
// stream's duplicate window discarding what had landed (Stats.Retries). A
// full window stops the reading: the ring fills and its producers' policy
// applies. It must not run in two goroutines at once. Run may be called
// again after it returns (once the cause of an error is cured): it first
// publishes again what the window holds unacknowledged, as after a
// failure.
func (b *Out) Run(ctx context.Context) error {
	end, err := b.beginRun(ctx)
	if err != nil {
		return err
	}
	defer end()
	defer func() {
		if b.rcancel != nil {
			(*b.rcancel)()
			b.rctx, b.rcancel = nil, nil
		}
	}()

	if b.w.n > b.w.acked {
		// A previous Run returned with messages in the window that are
		// not acknowledged: one it could not send (the error it returned),
		// acknowledgements it did not take. Its epoch is over: publish
		// them again, as after any failure.
		b.w.failed = true
	}
	pause := time.Duration(0)
	for {
		acked, err := b.process(ctx)
		if err != nil {
			return errors.Join(err, b.release())
		}
		if acked {
			pause = 0 // an acknowledgement: the stream takes messages again
		}
		if err := b.release(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case b.w.failed:
			// Publish the window again, from the released position, after
			// a pause (cut short by a reconnection) and once connected; the
			// stream discards the duplicates.
			b.setState("retrying")
			pause = min(max(2*pause, 10*time.Millisecond), time.Second)
			if !b.pause(ctx, pause) || !b.connected() {
				continue
			}
			// Outcomes of the failed epoch's publishes that came meanwhile.
			if _, err := b.process(ctx); err != nil {
				return errors.Join(err, b.release())
			}
			if err := b.release(); err != nil {
				return err
			}
			b.st.retries.Add(1)
			b.w.renew()
			b.epoch.Store(b.w.epoch)
			if err := b.republish(); err != nil {
				return err
			}
		case b.w.full():
			b.setState("full")
			select {
			case <-b.in.notify:
			case <-ctx.Done():
			}
		default:
			b.setState("reading")
			if err := b.read(ctx); err != nil {
				return err
			}
		}
	}
}

// pause waits for d, a reconnection or ctx done (false).
func (b *Out) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.reconn:
	case <-ctx.Done():
		return false
	}
	return true
}

// read reads up to the window's room from the ring (waiting for a first
// message, until a publish's outcome or ctx ends the wait) and publishes
// each message. After a publish fails, the batch ends: the rest stays in
// the ring, and the window is re-published.
func (b *Out) read(ctx context.Context) error {
	// The ring's wait sleeps up to 100 ms at a time and asks waitHook for
	// events only between sleeps (and, with a park policy, not before its
	// first): an acknowledgement arriving while it sleeps on an empty ring
	// would wait for that (the last messages' release late by up to
	// 100 ms: measured, docs/bridge.md). So the next event cancels the
	// read's context, which wakes the sleep at once; one that came before
	// wake was set is found by the load of pending after it (both are
	// sequentially consistent: put's Swap sees wake, or this load sees
	// pending), and cancels it here: the read takes what the ring holds
	// and does not wait. The context is kept for the next read until an
	// event cancels it (an event's cancel that comes late, after its event
	// was taken, ends a later read's wait for nothing: one more turn of
	// Run's loop). "At once" is a park's or a block's; a backoff wait sees
	// the cancellation after its current sleep (1 ms at most).
	if b.rctx == nil || b.rctx.Err() != nil {
		if b.rcancel != nil {
			(*b.rcancel)()
		}
		rctx, cancel := context.WithCancel(ctx)
		b.rctx, b.rcancel = rctx, &cancel
	}
	wctx := b.rctx
	b.in.wake.Store(b.rcancel)
	defer b.in.wake.Store(nil)
	if b.in.pending.Load() {
		(*b.rcancel)()
	}
	for rec, err := range b.cons.Batch(wctx, b.w.room()) {
		if err != nil {
			if errors.Is(err, errWake) || wctx.Err() != nil {
				return nil // an event to process, or Run's ctx done
			}
			b.fail(err)
			return fmt.Errorf("bridge: read ring %s: %w", b.ring, err)
		}
		e := b.w.push(b.cfg.ID, b.seqs, rec.Slot, rec.Seq, rec.Pos, rec.Data)
		if err := b.publish(e); err != nil {
			return err
		}
		if b.w.failed {
			break
		}
	}
	b.st.inflight.Store(int64(b.w.n - b.w.acked))
	return nil
}

// republish publishes every entry of the window not acknowledged, in
// order, in a new epoch. With StrictOrder the first carries no
// expectation, and each later one the Msg-Id of the message before it
// (acknowledged or published now).
func (b *Out) republish() error {
	for k := 0; k < b.w.n && !b.w.failed; k++ {
		e := b.w.at(k)
		if e.acked {
			if b.w.last != "" {
				b.w.last = e.id()
			}
			continue
		}
		if err := b.publish(e); err != nil {
			return err
		}
	}
	b.st.inflight.Store(int64(b.w.n - b.w.acked))
	return nil
}

// publish publishes e's message, with its reply subject for this epoch,
// and starts the acknowledgement timer if it is not running. A failure
// ends the epoch (w.failed); only one that retrying cannot cure is
// returned.
func (b *Out) publish(e *entry) error {
	if b.w.strict {
		e.expect(b.w.last)
	}
	b.w.address(e)
	nc := b.conns[e.conn].nc
	err := nc.PublishMsg(e.msg)
	if err == nil {
		e.sent = true
		e.at = b.now()
		b.arm()
		b.w.last = e.id()
		b.st.published.Add(1)
		return nil
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		err = fmt.Errorf("bridge: %s cannot be published to %s: with its headers it exceeds the server's max_payload (%d bytes): "+
			"raise max_payload (nats-server configuration), or create the ring with a smaller MaxMessage (ringctl create --max-msg); "+
			"the message stays in the ring, unreleased: %w",
			b.describe(e), b.cfg.URL, nc.MaxPayload(), err)
		b.fail(err)
		return err
	}
	b.epochFailed(err)
	return nil
}

// epochFailed ends the epoch for err (a publish or its acknowledgement
// failing), counting the first failure of each epoch.
func (b *Out) epochFailed(err error) {
	if !b.w.failed {
		b.fail(fmt.Errorf("bridge: publish to %q: %w (publishing the window again)", b.cfg.Subject, err))
		b.w.failed = true
	}
}

// process applies the events that have come (the publishes' outcomes, the
// timer's tick, a lost connection, a refusal the server reported), and
// reports whether one was an acknowledgement of this epoch. An error is a
// refusal no retry can cure (refusedForGood, permissionError): Run returns
// it. ctx is Run's: it bounds the requests made to explain a refusal.
func (b *Out) process(ctx context.Context) (acked bool, err error) {
	if !b.in.pending.Load() {
		return false, nil
	}
	tick := false
	for _, ev := range b.in.take() {
		switch ev.kind {
		case evTick:
			tick = true
			continue
		case evDisconnect:
			if ev.epoch == b.w.epoch && b.w.oldest() != nil {
				b.epochFailed(nats.ErrDisconnected)
			}
			continue
		case evRefused:
			perr, stop := b.permissionError(ev.err)
			b.fail(perr)
			if stop {
				b.st.inflight.Store(int64(b.w.n - b.w.acked))
				return acked, perr
			}
			continue
		}
		e := b.w.mine(ev.conn, ev.epoch, ev.slot)
		if e == nil {
			continue
		}
		if ev.err != nil {
			if err := b.refusedForGood(ctx, e, ev.err); err != nil {
				b.fail(err)
				b.st.inflight.Store(int64(b.w.n - b.w.acked))
				return acked, err
			}
			if !b.w.failed {
				ev.err = b.explain(ctx, ev.err)
			}
			b.epochFailed(ev.err)
			continue
		}
		b.w.ack(e)
		acked = true
		b.st.acked.Add(1)
		if ev.dup {
			b.st.dups.Add(1)
		} else {
			b.stored++
		}
	}
	if tick {
		b.expire()
	}
	b.st.inflight.Store(int64(b.w.n - b.w.acked))
	return acked, nil
}

// release releases the ring up to the last message acknowledged with every
// earlier one. An error is the ring's: Run returns it.
func (b *Out) release() error {
	k, pos := b.w.pop()
	if k == 0 {
		return nil
	}
	if err := b.cons.Release(pos); err != nil {
		err = fmt.Errorf("bridge: release ring %s up to %d: %w", b.ring, pos, err)
		b.fail(err)
		return err
	}
	b.st.released.Add(uint64(k))
	return nil
}

// outCounters are Out's Stats, updated by Run and read by anyone.
type outCounters struct {
	published, acked, dups, released atomic.Uint64
	retries                          atomic.Uint64
	inflight                         atomic.Int64
}

// Stats returns the bridge's state. Safe for concurrent use, at any time.
func (b *Out) Stats() OutStats {
	s := &b.st
	st := OutStats{
		Published:       s.published.Load(),
		Acked:           s.acked.Load(),
		Duplicates:      s.dups.Load(),
		Released:        s.released.Load(),
		InFlight:        int(s.inflight.Load()),
		Window:          b.cfg.Window,
		Errors:          b.errors.Load(),
		Retries:         s.retries.Load(),
		State:           b.stateName(),
		Connection:      b.status().String(),
		Reconnects:      b.reconnects(),
		Conns:           len(b.conns),
		Stream:          b.stream,
		DuplicateWindow: b.dups,
	}
	st.LastError = b.lastError()
	return st
}

// String prints the counters on one line.
func (s OutStats) String() string {
	return fmt.Sprintf("state=%s conn=%s conns=%d published=%d acked=%d dups=%d released=%d in_flight=%d/%d errors=%d retries=%d",
		s.State, s.Connection, s.Conns, s.Published, s.Acked, s.Duplicates, s.Released, s.InFlight, s.Window, s.Errors, s.Retries)
}

// sample is the bridge's state for the ring's bridge block, in the
// layout's codes (status.go, docs/layout.md "Lines 13 and 14").
func (b *Out) sample() statusSample {
	st := b.Stats()
	return statusSample{
		State:      stateCode(st.State),
		Connection: connCode(b.status()),
		Window:     uint64(st.Window),
		InFlight:   uint64(st.InFlight),
		Moved:      st.Published,
		Acked:      st.Acked,
		Errors:     st.Errors,
		Reconnects: st.Reconnects,
		Duplicates: st.Duplicates,
		Mark:       st.Released,
	}
}
