// Positions: loading the producer and consumer positions and validating
// them as a pair; slot intents.

package ring

import "errors"

// span checks a producer position p and a consumer position c loaded from
// the region and returns the depth between them. Legal pairs are 8-aligned
// with 0 <= p-c <= capacity, or, in a header-commit ring, the consumer up
// to capacity-8 bytes past p (depth 0): its consumer reads records by their
// headers, so it may pass records whose producer died between its commit
// and its position store, and a producer stores its position before every
// load of the consumer position, so it never commits more than
// capacity-8 bytes past what it last stored (docs/layout.md, "Header-commit
// rings"). Anything else is damage: ok is false.
func (r *Ring) span(p, c uint64) (depth uint64, ahead, ok bool) {
	if p%Align != 0 || c%Align != 0 {
		return 0, false, false
	}
	if d := p - c; d <= r.capacity {
		return d, false, true
	}
	if r.polled && c-p <= r.capacity-Align {
		return 0, true, true
	}
	return 0, false, false
}

// positions is a producer and a consumer position loaded from the region
// as a pair the ring was in (loadPositions).
type positions struct {
	p, c  uint64 // producer position (MPSC: the reservation frontier), consumer position
	depth uint64 // p-c; 0 when ahead
	ahead bool   // header commit: the consumer is past the published producer position (span)
}

// errMoving is loadPositions' answer when no attempt saw the consumer
// position hold still: the positions in the result are the last loaded and
// unvalidated. Never returned to a caller outside the package.
var errMoving = errors.New("ring: positions kept moving")

// loadPositions is the one reader of both positions, for every caller that
// needs them as a pair (Stats, Peek, ResetHighWater, a producer resuming,
// the MPSC producers' and the drop-oldest consumer's views, the release
// lock's holder). Both positions only grow, and other parties move them
// while they are loaded (the consumer; other MPSC producers; in a
// drop-oldest ring, producers reclaiming), so a producer position loaded
// after the consumer position may be far ahead of it, and one loaded
// before it behind it. So the consumer position is loaded, then the
// producer position, then the consumer position again: if it reads the
// same, it held when the producer position was loaded, and the pair is one
// the ring was in. Such a pair is validated by span: err wraps ErrCorrupt
// if it is inconsistent. After tries attempts (tries <= 0: until one holds
// still) that all saw the consumer position move, err is errMoving.
//
// Paths that load only the other side's position, against their own that
// they know (the SPSC producer, the consumer's reads, an MPSC producer's
// room check), validate it with span directly: they are the hot paths.
func (r *Ring) loadPositions(tries int) (pr positions, err error) {
	cw, pw := word(r.region, offConsumerPos), word(r.region, offProducerPos)
	for n := 0; tries <= 0 || n < tries; n++ {
		// Acquire loads: the consumer position pairs with the consumer's
		// release store of it (Consumer.release; releaseRange and the
		// compare-and-swaps of a drop-oldest ring), the producer position
		// with the SPSC producer's publish after its records (an MPSC
		// frontier publishes nothing: the record headers do).
		pr.c = cw.Load()
		pr.p = pw.Load()
		if cw.Load() != pr.c {
			continue
		}
		var ok bool
		if pr.depth, pr.ahead, ok = r.span(pr.p, pr.c); !ok {
			return pr, corruptf(offConsumerPos, "consumer position %d is inconsistent with producer position %d (capacity %d)", pr.c, pr.p, r.capacity)
		}
		return pr, nil
	}
	return pr, errMoving
}

// intent loads slot k's intent: the position it reserves from and the
// reservation's length. The owner stores the length, then the position; a
// read that straddles an update is retried (a bounded number of times: a
// live owner rewriting its intent is alive, which is all a torn read could
// then mislead about).
func (r *Ring) intent(k int) (pos, n uint64) {
	base := r.SlotOffset(k)
	wp, wn := word(r.region, base+slotIntentPos), word(r.region, base+slotIntentLen)
	for range 100 {
		// Acquire: pairs with the owner's stores of its intent (takeShared:
		// the length, then the position), made before its compare-and-swap.
		p1 := wp.Load()
		n = wn.Load()
		if wp.Load() == p1 {
			return p1, n
		}
	}
	return wp.Load(), n
}
