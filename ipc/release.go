package ipc

import (
	"fmt"

	"github.com/shmring/shmring/internal/errs"
)

// Errors of held reads: values, so that a caller retrying allocates nothing.
var (
	errHeldRead = fmt.Errorf("ipc: read: a consumer that holds its reads (ConsumerConfig.Hold) reads with Batch, whose Records carry the Pos to Release; Read and TryRead would deliver messages with no position to release: %w", errs.ErrInvalid)
	errNotHeld  = fmt.Errorf("ipc: release: the consumer does not hold its reads: its reads release what they deliver; create it with ConsumerConfig.Hold to release later: %w", errs.ErrInvalid)
)

// Release hands back to the producers the messages a consumer created
// with ConsumerConfig.Hold has read, up to pos: the Pos of a Record a Batch
// loop yielded, which releases that message and every one before it. pos
// must lie between the released position and the read cursor, at a
// message's end, as delivered; anything else returns [io/fs.ErrInvalid] and
// changes nothing, as does a consumer created without Hold. Messages the
// consumer skipped rather than delivered right after pos (padding, a
// duplicate it discarded) are released with it. Releasing a Pos again, or
// one before the released position, is an error; releasing the released
// position itself is not (it releases only skipped messages, if any).
//
// The consumer position in the segment moves to pos with one store (in a
// ring with sequences, after the released messages' sequences are stored,
// which makes a successor discard them; in an MPSC ring, after the released
// range is zeroed): a consumer killed in Release leaves its successor
// resuming at the previous release or at pos, and in a ring with sequences
// anywhere between the two (the released messages' sequences are stored
// one by one, in order, before the position): never past pos, and what it
// does not deliver again was delivered before. Producers parked on a full
// ring are woken. Release is a call
// on the Consumer like Read: not from inside a Batch loop body, nor
// concurrently with another call. It returns [ErrClosed] after Close, and
// [ErrCorrupt] if a held message changed in the ring since it was read.
func (c *Consumer) Release(pos uint64) error {
	if c.closed.Load() {
		return c.errClosed()
	}
	if !c.held {
		return errNotHeld
	}
	if raceChecks {
		c.use.enter("Consumer", opRelease)
		defer c.use.exit()
	}
	start := c.rc.Position()
	err := c.rc.Release(pos)
	if c.rc.Position() != start && c.pw.Parked.Load() != 0 {
		wake(c.pw)
	}
	if err != nil {
		return fmt.Errorf("ipc: %q: %w", c.r.Path(), err)
	}
	return nil
}
