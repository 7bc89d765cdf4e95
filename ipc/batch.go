package ipc

import (
	"context"
	"iter"
)

// emptySeq is the iterator Batch returns with an error, or for max <= 0:
// ranging it yields nothing (a nil iter.Seq would panic).
var emptySeq iter.Seq[Record] = func(func(Record) bool) {}

// Batch waits as Read does until at least one message is available, then
// returns an iterator over up to max messages, zero-copy: each Record's
// Data points into the ring. The messages are consumed as the loop goes,
// each one released when the loop body for it returns; a break leaves the
// rest in the ring for the next call.
//
//	seq, err := c.Batch(ctx, 64)
//	if err != nil {
//		return err
//	}
//	for rec := range seq {
//		handle(rec.Data) // rec.Data is valid until this body returns
//	}
//
// Validity: a Record's Data is valid only until the loop body it was
// yielded to returns (the consumer then hands its space back to the
// producers, which may overwrite it at once; copy what must outlive it),
// and the iterator only until the next call on the Consumer: ranging it
// after that, or a second time, yields nothing. The loop body runs on the
// ranging goroutine and must not call the Consumer's methods, nor close
// its Ring, as for Read's callback.
//
// The wait, and its errors, are Read's: Batch returns them with an
// iterator that yields nothing. It may return, rarely, with what it saw
// pending turning out to hold no message (padding, a duplicate the
// consumer discards, an MPSC reservation its producer abandoned): the
// iterator then yields nothing, and the next Batch waits again. Damage
// found while ranging ends the iteration; the next call returns
// [ErrCorrupt]. Each message is released with a position store of its own
// (Read(ctx, max, fn) releases a whole batch with one, and is the faster
// way to drain a ring). Record's Seq, Slot and Time are 0 (see Record).
func (c *Consumer) Batch(ctx context.Context, max int) (iter.Seq[Record], error) {
	if c.closed.Load() {
		return emptySeq, c.errClosed()
	}
	if ctx == nil {
		return emptySeq, errNilContext
	}
	if raceChecks {
		c.use.enter("Consumer", opBatch)
		defer c.use.exit()
	}
	c.gen++
	if max <= 0 {
		return emptySeq, nil
	}
	if c.coalesce > 0 {
		c.awaitHold()
	}
	ok, err := c.ready()
	if !ok && err == nil {
		err = c.await(ctx, c.ready)
	}
	if err != nil {
		return emptySeq, err
	}
	c.batchGen, c.batchMax, c.batchRan = c.gen, max, false
	return c.seq, nil
}

// ready is Batch's test, without consuming anything: a record is pending
// and the consumer is not stopped at an uncommitted MPSC reservation; when
// it is, the reservation's owner is checked as a read that found nothing
// checks it (recover), and a dead one's reservation skipped.
func (c *Consumer) ready() (bool, error) {
	ok, err := c.rc.Pending()
	if err != nil || (ok && !c.rc.Blocked()) {
		return ok, err
	}
	return c.recover()
}

// iterate is the iterator Batch returns (c.seq): up to batchMax messages,
// one read of one message per step, the loop body run inside the read's
// callback, so the message is released only once the body returns.
func (c *Consumer) iterate(yield func(Record) bool) {
	if c.batchRan || c.batchGen != c.gen || c.closed.Load() {
		return
	}
	c.batchRan = true
	if raceChecks {
		c.use.enter("Consumer", opBatch)
		defer c.use.exit()
	}
	stop := false
	fn := func(msg []byte) {
		if !yield(Record{Data: msg}) {
			stop = true
		}
	}
	n := 0
	for n < c.batchMax && !stop {
		k, err := c.tryReadBatch(1, fn)
		if k == 0 || err != nil {
			break
		}
		n += k
	}
	if c.coalesce > 0 && !stop {
		c.hold(c.batchMax, &n)
	}
}
