package ipc

import (
	"context"
	"iter"
	"time"

	"golang.org/x/sys/unix"
)

// Batch returns an iterator that waits as Read does until at least one
// message is available, then yields up to max messages, zero-copy: each
// Record's Data points into the ring.
//
//	for rec, err := range c.Batch(ctx, 64) {
//		if err != nil {
//			return err
//		}
//		handle(rec.Data) // valid until the loop ends
//	}
//
// Release: every message the loop saw is consumed, with one position store,
// when the loop ends, whether it ran to the end or broke (the record whose
// body broke is consumed: the body saw it); the messages it did not reach
// stay in the ring for the next read. So a Record's Data is valid until the
// loop ends (the consumer then hands the space back to the producers,
// which may overwrite it at once: copy what must outlive the loop), except
// in a ring created with DropOldest, whose consumer copies each message
// out before delivering it, into one buffer: there Data is valid only until
// the body it was yielded to returns. A consumer created with
// ConsumerConfig.Hold releases nothing when the loop ends: the messages
// stay held, their Data valid, until [Consumer.Release] hands them back.
//
// Errors: a wait that ends without a message (ctx done, the Wait's hook,
// [ErrPeerDead], [ErrClosed]), the argument checks ([io/fs.ErrInvalid] for
// a nil ctx) and damage found while reading ([ErrCorrupt], after the
// messages before it) are yielded once, as (Record{}, err), and end the
// iteration; every other step yields a nil error. max <= 0 yields nothing.
//
// The iterator may be ranged more than once: each range is a batch of its
// own, waiting again. It is a reading call like Read: the loop body runs on
// the ranging goroutine and must not call the Consumer's methods, nor close
// its Ring, nor range another of its iterators. The loop allocates nothing
// (Batch is small enough to inline, so the iterator it returns stays on
// the caller's stack).
func (c *Consumer) Batch(ctx context.Context, max int) iter.Seq2[Record, error] {
	// Keep this a single return of a func literal calling one function:
	// anything more exceeds the inlining budget, and the range loop then
	// allocates the iterator, its body and its state.
	return func(yield func(Record, error) bool) { c.batch(ctx, max, yield) }
}

// batch is the iterator Batch returns: Read's wait and read of up to max
// messages, the loop body run inside the read's callback, so that the whole
// batch is released with one position store once the loop ends; a body
// that breaks stops the ring's read after its record.
func (c *Consumer) batch(ctx context.Context, max int, yield func(Record, error) bool) {
	if c.closed.Load() {
		yield(Record{}, c.errClosed())
		return
	}
	if ctx == nil {
		yield(Record{}, errNilContext)
		return
	}
	if raceChecks {
		c.use.enter("Consumer", opBatch)
		defer c.use.exit()
	}
	if max <= 0 {
		return
	}
	// Unix time minus CLOCK_MONOTONIC (the clock of record timestamps),
	// once per batch and only for rings whose records carry time.
	var offset int64
	if c.times {
		offset = monotonicToUnix()
	}
	c.broke = false
	if c.rc.Fast() {
		c.batchPlain(ctx, max, yield)
		return
	}
	_, err := c.readBatch(ctx, max, func(msg []byte) {
		cur := c.rc.Current()
		rec := Record{Data: msg, Seq: cur.Seq, Slot: cur.Slot, Pos: cur.End}
		if cur.Mono != 0 {
			rec.Time = cur.Mono + offset
		}
		if c.broke || !yield(rec, nil) {
			// The body broke: this record is consumed, the batch ends.
			c.broke = true
			c.rc.Stop()
		}
	})
	if err != nil && !c.broke {
		yield(Record{}, err)
	}
}

// batchPlain is batch for a plain ring's consumer (ring.Consumer.Fast):
// the ring's pull-style read (Next, then EndBatch) in place of Read's
// callback, so that a message costs a call of Next and the loop body's
// yield, not a callback of ours around the yield as well (issue 17). It
// waits, releases, counts, wakes producers and starts a coalescing hold as
// readBatch does: a read that finds no message releases what it skipped
// (padding) before it waits, and the batch is released with one position
// store when the loop ends.
func (c *Consumer) batchPlain(ctx context.Context, max int, yield func(Record, error) bool) {
	if c.coalesce > 0 {
		c.awaitHold()
	}
	start := c.rc.Position()
	var first []byte
	next := start
	take := func() (bool, error) {
		var ok bool
		if first, next, ok = c.rc.Next(next); ok {
			return true, nil
		}
		// Nothing to deliver: release what was skipped, as a read that
		// delivers nothing does.
		err := c.rc.EndBatch(next, 0, 0, false)
		c.wakeProducers(start)
		start = next
		return false, err
	}
	done, err := take()
	if !done && err == nil {
		err = c.await(ctx, take)
	}
	n := 0
	if err == nil {
		msg, pos := first, next
		var bytes uint64
		for {
			n++
			bytes += uint64(len(msg))
			if !yield(Record{Data: msg, Pos: pos}, nil) {
				// The body broke: this record is consumed, the batch ends.
				c.broke = true
				break
			}
			var ok bool
			if n == max {
				break
			}
			if msg, pos, ok = c.rc.Next(pos); !ok {
				break // drained, or damage: EndBatch returns it
			}
		}
		err = c.rc.EndBatch(pos, n, bytes, n == max)
		c.wakeProducers(start)
	}
	if c.coalesce > 0 {
		c.hold(max, &n)
	}
	if err != nil && !c.broke {
		yield(Record{}, err)
	}
}

// monotonicToUnix returns what to add to a CLOCK_MONOTONIC reading (the
// clock of record timestamps) to get Unix time, now.
func monotonicToUnix() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0 // never on Linux; the times then stay monotonic readings
	}
	return time.Now().UnixNano() - ts.Nano()
}
