package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// resync re-establishes what fetch relies on, that every message of the
// consumer with a stream sequence at or below high is in the ring and that
// the next delivery is the one after lastCons. It reads the consumer's
// state: the messages it has delivered (up to Delivered.Stream) that are not
// in the ring (above high) were delivered to a predecessor that died, or to
// a fetch whose reply was lost; the server would redeliver them only after
// their AckWait, after newer ones. So they are read from the stream now, in
// order, and written. Deliveries from then on follow Delivered.Consumer.
func (b *In) resync(ctx context.Context) error {
	b.st.resyncs.Add(1)
	tctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	info, err := b.cons.Info(tctx)
	cancel()
	if err != nil {
		return b.missingError(ctx, err)
	}
	// The consumer was created again (perhaps with its stream: a stream
	// deleted takes its consumers with it): is the stream the same?
	if !info.Created.Equal(b.consCreated) {
		if err := b.checkStream(ctx); err != nil {
			return err
		}
		b.consCreated = info.Created
	}
	// What the consumer has had acknowledged is in this ring, or in the one
	// it replaced: a recreated ring starts after the acknowledged messages.
	if floor := info.AckFloor.Stream; floor > b.high {
		b.high = floor
		b.st.high.Store(floor)
	}
	if err := b.recover(ctx, info.Delivered.Stream); err != nil {
		return err
	}
	b.lastCons = info.Delivered.Consumer
	if info.NumAckPending > 0 && b.canReset() && !b.noReset.Load() {
		b.reset(ctx)
	}
	b.needSync = false
	return nil
}

// canReset reports whether resync may reset the consumer to high+1: with
// AckPolicy explicit only (with all, the next acknowledgement covers what a
// predecessor left pending), never on a work-queue stream (where an
// acknowledgement deletes, and a reset does not), and only where the
// consumer's DeliverPolicy lets it start there.
func (b *In) canReset() bool {
	if b.ackAll || b.str.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy {
		return false
	}
	cc := b.cons.CachedInfo().Config
	return cc.DeliverPolicy == jetstream.DeliverAllPolicy ||
		cc.DeliverPolicy == jetstream.DeliverByStartSequencePolicy && b.high+1 >= cc.OptStartSeq
}

// reset makes the consumer deliver from high+1 on, forgetting the
// deliveries pending acknowledgement (all at or below high, so in the ring):
// with AckPolicy explicit, those a dead predecessor left would otherwise
// count against MaxAckPending until their AckWait expired, and a bridge
// killed often would stall the consumer. A server without the reset API
// (before 2.14) refuses it, as does one that does not permit it to the
// bridge's user (then it is not tried again): the bridge goes on, and they
// are redelivered and skipped after AckWait instead.
func (b *In) reset(ctx context.Context) {
	tctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	resp, err := b.js.ResetConsumerToSequence(tctx, b.cfg.Stream, b.cfg.Consumer, b.high+1)
	if err != nil && b.resetRefused() {
		return // counted, and said, by onAsyncError
	}
	if err != nil {
		b.fail(fmt.Errorf("bridge: reset consumer %s/%s to %d (its deliveries pending acknowledgement are redelivered after AckWait instead): %w",
			b.cfg.Stream, b.cfg.Consumer, b.high+1, err))
		return
	}
	b.st.resets.Add(1)
	b.lastCons = resp.Delivered.Consumer
}

// resetRefused reports whether the server refused the reset request for
// want of permissions (it then answers nothing: the request times out).
// The round trip makes sure its report, sent before its PONG, was read.
func (b *In) resetRefused() bool {
	_ = b.nc.FlushTimeout(b.cfg.Timeout)
	le := b.nc.LastError()
	if !errors.Is(le, nats.ErrPermissionViolation) {
		return false
	}
	if _, subj := refused(le); !strings.HasPrefix(subj, "$JS.API.CONSUMER.RESET.") {
		return false
	}
	b.noReset.Store(true)
	return true
}

// recover writes the consumer's messages with stream sequences in
// (high, to] into the ring, read from the stream one by one (the next
// message at or after a sequence matching the consumer's filter), so that
// it works on every retention policy without a second consumer. There are
// at most the consumer's MaxAckPending of them.
func (b *In) recover(ctx context.Context, to uint64) error {
	for b.high < to {
		msg, err := b.next(ctx, b.high+1)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // nothing left in the stream at or after high+1
		}
		if err != nil {
			return fmt.Errorf("bridge: read message %d+ of stream %q: %w", b.high+1, b.cfg.Stream, err)
		}
		if msg.Sequence > to {
			break
		}
		if err := b.write(msg.Sequence, msg.Data); err != nil {
			return err
		}
		b.st.recovered.Add(1)
	}
	// Nothing else the consumer delivered up to to exists any more.
	if to > b.high {
		b.high = to
		b.st.high.Store(to)
	}
	return nil
}

// next returns the first message of the stream at or after seq that the
// consumer's filter matches (the smallest over its filter subjects).
func (b *In) next(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	filters := b.filters
	if len(filters) == 0 {
		filters = []string{">"}
	}
	var best *jetstream.RawStreamMsg
	for _, f := range filters {
		tctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
		m, err := b.str.GetMsg(tctx, seq, jetstream.WithGetMsgSubject(f))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if best == nil || m.Sequence < best.Sequence {
			best = m
		}
	}
	if best == nil {
		return nil, jetstream.ErrMsgNotFound
	}
	return best, nil
}
