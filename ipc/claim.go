package ipc

import (
	"context"

	"github.com/shmring/shmring/ring"
)

// InDoubt returns, in a ring created with Config.Sequences, the sequences
// [from, to) that the previous producer under this ID (or the SPSC ring's
// previous producer) may have died committing: every message it wrote with
// a sequence below from was committed, none with one at or above to (the
// sequence this producer's first new message gets: SlotStats.NextSeq when
// it opened). After a crash, resend the messages you had
// given sequences from on, in order, with WriteSeq and their original
// sequences, before any new message: none is lost and none delivered twice.
// MPSC: the previous producer's last message (from = to-1); SPSC: its last
// write if that was cut short (a batch), else nothing (from = to).
func (p *Producer) InDoubt() (from, to uint64) {
	if raceChecks {
		p.use.enter("Producer", opInDoubt)
		defer p.use.exit()
	}
	return p.rp.InDoubt()
}

// Claim reserves room for a message of up to n bytes and returns the slice
// to fill, inside the ring (zero-copy); Commit publishes it, Abort gives
// the room back. When the ring is full the producer waits as for Write
// (until ctx is done); a producer that does not wait (Drop, DropOldest,
// Overflow: there is no message to route yet) returns ErrFull, counted as
// a drop. The slice must not be used after Commit or Abort, nor after
// Close or Ring.Close (which abandon the claim and unmap the ring). A nil
// ctx returns [io/fs.ErrInvalid].
func (p *Producer) Claim(ctx context.Context, n int) ([]byte, error) {
	if p.closed.Load() {
		return nil, p.errClosed()
	}
	if ctx == nil {
		return nil, errNilContext
	}
	if raceChecks {
		p.use.enter("Producer", opClaim)
		defer p.use.exit()
	}
	b, err := p.rp.Claim(n)
	if err != ring.ErrFull {
		return b, err
	}
	err = p.waitFor(ctx, 1, func() (bool, error) {
		var e error
		b, e = p.rp.Claim(n)
		return notFull(e)
	}, nil)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Commit publishes the first n bytes of the claimed message (n from 0 to
// the size claimed): claim the most a message may need, commit what it
// took. Without a claim (none was made, or it was committed or aborted
// already), or with n out of range, it returns an error matching
// [io/fs.ErrInvalid] and writes nothing; [ErrClosed] after Close or
// Ring.Close (the claim was abandoned).
func (p *Producer) Commit(n int) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opCommit)
		defer p.use.exit()
	}
	err := p.rp.CommitN(n)
	if err == nil {
		p.published()
	}
	return err
}

// Abort abandons the claimed message, if any. It returns ErrClosed after
// Close or Ring.Close, which abandoned the claim already.
func (p *Producer) Abort() error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opAbort)
		defer p.use.exit()
	}
	p.rp.Abort()
	p.published() // an MPSC abort may unblock the consumer
	return nil
}
