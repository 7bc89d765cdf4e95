// Claims: zero-copy writes (Claim, then Commit, CommitN or Abort).

package ring

import (
	"fmt"
)

// Claim reserves room for an n-byte payload and returns the slice to fill,
// which lies inside the ring. The record becomes visible at Commit; Abort
// gives the room back. The slice must not be used after Commit or Abort.
// Claim returns ErrFull, ErrTooLarge or ErrCorrupt as TryWrite does.
func (p *Producer) Claim(n int) ([]byte, error) {
	if p.claimed {
		return nil, ErrClaimPending
	}
	if n < 0 {
		return nil, fmt.Errorf("ring: claim of negative length %d", n)
	}
	pos, err := p.reserve(uint64(n))
	if err != nil {
		return nil, err
	}
	p.claimed, p.claimPos, p.claimLen = true, pos, uint64(n)
	p.setFast()
	i := pos&p.mask + HeaderSize + p.r.extra
	return p.data[i : i+uint64(n) : i+uint64(n)], nil
}

// Claimed returns the length of the outstanding claim, or -1 if none.
func (p *Producer) Claimed() int {
	if !p.claimed {
		return -1
	}
	return int(p.claimLen)
}

// Commit publishes the claimed record with its full claimed length.
func (p *Producer) Commit() error { return p.CommitN(int(p.claimLen)) }

// CommitN publishes the claimed record with only its first n bytes, for a
// producer that claimed the most it might need. n must not exceed the claim.
func (p *Producer) CommitN(n int) error {
	if !p.claimed {
		return ErrNoClaim
	}
	if n < 0 || uint64(n) > p.claimLen {
		return fmt.Errorf("ring: commit of %d bytes, claimed %d; commit from 0 to the size claimed: %w", n, p.claimLen, ErrInvalid)
	}
	i := p.claimPos & p.mask
	p.claimed = false
	p.setFast()
	p.stamp(i)
	if p.mpsc {
		p.commitShared(i, uint64(n))
		return nil
	}
	p.zeroNext(p.claimPos + p.r.dataSize(uint64(n)))
	publish(word(p.data, i), makeHeader(uint32(n), 0, TypeData))
	p.flushPad()
	p.pos = p.claimPos + p.r.dataSize(uint64(n))
	publish(p.prodPos, p.pos)
	if p.hook != nil {
		p.hook(stepCommit)
	}
	p.count(1, uint64(n))
	p.committed()
	return nil
}

// Abort abandons the outstanding claim. In an SPSC ring nothing was
// visible; in an MPSC ring the reservation becomes padding, which the
// consumer skips.
func (p *Producer) Abort() {
	if !p.claimed {
		return
	}
	p.claimed = false
	p.setFast()
	if p.mpsc {
		size := p.r.dataSize(p.claimLen)
		publish(word(p.data, p.claimPos&p.mask), makeHeader(uint32(size-HeaderSize), p.slot, TypePadding))
	}
	// Header commit: the claim's header word was never written, so it
	// still reads zero; the deferred padding is not needed.
	p.padSize = 0
}
