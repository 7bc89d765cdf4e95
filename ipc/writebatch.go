package ipc

import (
	"context"

	"github.com/shmring/shmring/ring"
)

// WriteBatch writes msgs in order, publishing each run that fits with one
// position store (SPSC), or reserving it with one compare-and-swap (MPSC:
// 1.5x the messages per second of single writes with 4 producers,
// docs/benchmarks.md). When the ring fills, the ProducerConfig applies to
// the rest as for Write: a waiting producer waits (until ctx is done) and
// goes on; Drop writes what fits, counts the rest as drops, and returns
// ErrFull; Overflow routes the rest. It returns the number of messages
// written (or routed), with the error that stopped it, if any. As for
// Write, ctx is looked at only when the ring is full; a nil ctx returns
// [io/fs.ErrInvalid].
func (p *Producer) WriteBatch(ctx context.Context, msgs [][]byte) (int, error) {
	if p.closed.Load() {
		return 0, p.errClosed()
	}
	if ctx == nil {
		return 0, errNilContext
	}
	if raceChecks {
		p.use.enter("Producer", opWriteBatch)
		defer p.use.exit()
	}
	var done int
	for done < len(msgs) {
		n, err := p.rp.WriteBatch(msgs[done:])
		done += n
		if n > 0 {
			p.published()
		}
		if err == nil {
			continue
		}
		if err != ring.ErrFull {
			return done, err
		}
		return p.writeBatchWaiting(ctx, msgs, done)
	}
	return done, nil
}

// writeBatchWaiting is the rest of a WriteBatch that found the ring full:
// registered as waiting until it returns, so that Ring.Close, which wakes
// its waits, never unmaps the segment under the writes between them.
func (p *Producer) writeBatchWaiting(ctx context.Context, msgs [][]byte, done int) (int, error) {
	if !p.r.beginWait(&p.closed) {
		return done, p.errClosed()
	}
	defer p.r.endWait()
	for first := true; done < len(msgs); first = false {
		if !first {
			n, err := p.rp.WriteBatch(msgs[done:])
			done += n
			if n > 0 {
				p.published()
			}
			if err == nil {
				continue
			}
			if err != ring.ErrFull {
				return done, err
			}
		}
		var k int
		err := p.waitFor(ctx, len(msgs)-done, func() (bool, error) {
			var e error
			k, e = p.rp.WriteBatch(msgs[done:])
			return notFull(e)
		}, func() error {
			for _, m := range msgs[done:] {
				if err := p.overflow(m); err != nil {
					return err
				}
			}
			k = len(msgs) - done
			return nil
		}, func() error {
			for _, m := range msgs[done:] {
				if _, err := p.rp.TryWriteOverwrite(m); err != nil {
					return err
				}
				k++
			}
			return nil
		})
		done += k
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
