package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/ipc"
)

// Run moves messages from the stream into the ring until ctx is done
// (it returns ctx's error), the ring fails (closed, damaged, or a message
// larger than the ring's largest), or the server refuses the bridge's
// fetches, acknowledgements, replies' subscription or resync requests for
// want of permissions (nats.ErrPermissionViolation; the error names the
// subject and the permission to grant). Everything else on the NATS side
// (a server gone, a timeout, a consumer or stream missing) is counted in
// Stats.Errors, retried with a growing pause (up to a second), and
// followed by a resync: Run does not return for it. It must not run in two
// goroutines at once.
func (b *In) Run(ctx context.Context) error {
	// A refusal the server reports (onAsyncError) ends rctx: a fetch, a
	// request or a wait for room ends at once, and Run returns it.
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	end, err := b.beginRun(rctx)
	if err != nil {
		return err
	}
	defer end()
	b.refusal.begin(cancel)
	defer b.refusal.end()
	if err := b.run(rctx); err != nil {
		return err
	}
	if perr := b.refusal.get(); perr != nil {
		b.fail(perr)
		return perr
	}
	return ctx.Err()
}

// run is Run's loop, until ctx (Run's, ended by a refusal too) is done or
// the ring fails (its error).
func (b *In) run(ctx context.Context) error {
	// A previous Run may have stopped in the middle of a batch: its
	// messages are redelivered after the newer ones, so resync first.
	b.needSync = true
	pause := time.Duration(0)
	for ctx.Err() == nil {
		var err error
		if b.reconnected.Swap(false) {
			b.needSync = true // deliveries may have been lost with the old connection
		}
		if b.needSync {
			b.setState("resyncing")
			err = b.resync(ctx)
		}
		if err == nil {
			err = b.waitPressure(ctx)
		}
		if err == nil {
			b.setState("fetching")
			err = b.fetch(ctx)
		}
		if err == nil {
			pause = 0
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if fatal(err) {
			b.fail(err)
			return err
		}
		b.fail(err)
		b.needSync = true
		pause = min(max(2*pause, 10*time.Millisecond), time.Second)
		b.setState("retrying")
		if !sleep(ctx, pause) {
			break
		}
	}
	return nil
}

// fatal reports whether err is one Run cannot get past by retrying: the ring
// closed or damaged, a message it cannot hold, the stream recreated.
func fatal(err error) bool {
	return errors.Is(err, ipc.ErrClosed) || errors.Is(err, ipc.ErrCorrupt) || errors.Is(err, ipc.ErrTooLarge) || errors.Is(err, errRecreated)
}

// sleep waits for d or until ctx is done (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitPressure returns once the ring's pressure is not raised: the bridge
// fetches nothing meanwhile. It looks every few milliseconds (each look
// counted in Stats.PauseChecks); the ring's hysteresis (HighWater down to
// LowWater) keeps it from flapping.
//
// The delay level falls only when the consumer reads a record that waited
// less than the target, so with the bridge holding back it could stay
// raised over an empty ring for ever: the bridge honours it only while the
// ring holds something, and fetches again once the consumer has drained it.
func (b *In) waitPressure(ctx context.Context) error {
	wait := time.Millisecond
	for {
		p, err := b.prod.Pressure()
		if err != nil {
			return fmt.Errorf("bridge: ring %s: %w", b.ring, err)
		}
		if !p.Depth && p.Delay {
			st, err := b.r.Stats()
			if err != nil {
				return fmt.Errorf("bridge: ring %s: %w", b.ring, err)
			}
			p.Delay = st.Depth > 0
		}
		if !p.Depth && !p.Delay {
			b.st.paused.Store(false)
			return nil
		}
		if !b.st.paused.Load() {
			b.st.paused.Store(true)
			b.st.pauses.Add(1)
			b.setState("paused")
		}
		b.st.checks.Add(1)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// fetch fetches one batch from the durable consumer, writes what is not in
// the ring yet, and acknowledges what the ring holds. A delivery sequence
// that skips (a delivery lost on the way: a fetch that expired on the client
// first, a reconnection) stops the batch: the rest is dropped unacknowledged
// and a resync follows, which writes the missed messages from the stream.
// The consumer's first delivery since a resync, if the ring holds it, is
// skipped only after checkStream finds the stream the one NewIn found (a
// recreated one returns errRecreated, nothing acknowledged).
func (b *In) fetch(ctx context.Context) error {
	// The fetch ends when ctx is done, or after FetchWait: the server is
	// asked to answer a tenth earlier, so its reply is normally in first.
	fctx, cancel := context.WithTimeout(ctx, b.cfg.FetchWait)
	defer cancel()
	mb, err := b.cons.Fetch(b.cfg.Batch, jetstream.FetchContext(fctx))
	if err != nil {
		return fmt.Errorf("bridge: fetch from %s/%s: %w", b.cfg.Stream, b.cfg.Consumer, err)
	}
	var (
		last    jetstream.Msg // AckAll: the processed message of the highest stream sequence
		lastSeq uint64
		unacked uint64 // AckAll: messages processed since the last acknowledgement
		werr    error
	)
	msgs := mb.Messages()
	for msg := range msgs {
		b.st.fetched.Add(1)
		if b.needSync || werr != nil {
			continue // drained: not acknowledged, written after the resync if need be
		}
		md, err := msg.Metadata()
		if err != nil {
			b.fail(fmt.Errorf("bridge: a message from %s/%s without metadata: %w", b.cfg.Stream, b.cfg.Consumer, err))
			b.needSync = true
			continue
		}
		if md.Sequence.Consumer != b.lastCons+1 {
			b.st.gaps.Add(1)
			b.needSync = true
			continue
		}
		seq := md.Sequence.Stream
		if seq <= b.high && b.lastCons == 0 {
			// The consumer's first delivery since the resync, and one the
			// ring holds: a stream deleted and created again with its
			// consumer (unseen, e.g. while the bridge paused) delivers from
			// 1 with no gap. Look at the stream once before skipping it.
			if err := b.checkStream(ctx); err != nil {
				b.needSync = true
				werr = err // not acknowledged; errRecreated stops Run
				continue
			}
		}
		b.lastCons = md.Sequence.Consumer
		if seq <= b.high {
			b.st.dups.Add(1)
		} else if werr = b.write(seq, msg.Data()); werr != nil {
			continue
		}
		if !b.ackAll {
			b.ack(msg, 1)
			continue
		}
		unacked++
		if seq >= lastSeq {
			last, lastSeq = msg, seq
		}
		// One acknowledgement per burst: when no further message is
		// waiting, rather than at the end of a fetch that may wait
		// FetchWait for more.
		if len(msgs) == 0 {
			b.ack(last, unacked)
			last, lastSeq, unacked = nil, 0, 0
		}
	}
	if last != nil {
		b.ack(last, unacked)
	}
	if werr != nil {
		return werr
	}
	err = mb.Error()
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// The server did not end the fetch in time (it is asked to end it
		// first): deliveries may be on their way to an inbox nobody reads
		// any more, and with no later delivery to show the skip, they
		// would wait for their AckWait. Resync now instead.
		b.needSync = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("bridge: fetch from %s/%s: %w", b.cfg.Stream, b.cfg.Consumer, err)
	}
	return nil
}

// write writes one message into the ring with seq as its sequence, waiting
// for room while the ring is full (never dropping), and records seq as in
// the ring.
func (b *In) write(seq uint64, data []byte) error {
	for {
		err := b.prod.WriteSeq(context.Background(), seq, data)
		switch {
		case err == nil:
			b.high = seq
			b.st.high.Store(seq)
			b.st.written.Add(1)
			return nil
		case errors.Is(err, errStopping):
			return context.Canceled
		case errors.Is(err, ipc.ErrTooLarge):
			return fmt.Errorf("bridge: message %d of stream %q (%d bytes) does not fit in ring %s: recreate the ring with a larger MaxMessage, "+
				"or limit the stream's max_msg_size: %w", seq, b.cfg.Stream, len(data), b.ring, err)
		case errors.Is(err, ipc.ErrFull), errors.Is(err, ipc.ErrPeerDead):
			// An operator's override made the producer drop, or the wait
			// gave up: the message is not in the ring; try again.
			b.fail(fmt.Errorf("bridge: write message %d into ring %s: %w (retrying)", seq, b.ring, err))
			if b.stopping.Load() || !sleep(context.Background(), 10*time.Millisecond) {
				return context.Canceled
			}
		default:
			return fmt.Errorf("bridge: write message %d into ring %s: %w", seq, b.ring, err)
		}
	}
}

// ack acknowledges msg, and with AckAll the n messages it covers. A lost
// acknowledgement only means a redelivery, which the bridge skips.
func (b *In) ack(msg jetstream.Msg, n uint64) {
	if err := msg.Ack(); err != nil {
		b.fail(fmt.Errorf("bridge: acknowledge to %s/%s: %w", b.cfg.Stream, b.cfg.Consumer, err))
		return
	}
	b.st.acked.Add(n)
}
