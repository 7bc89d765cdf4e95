// Positions: loading the producer and consumer positions and validating
// them as a pair; slot intents.

package ring

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

// intent loads slot k's intent: the position it reserves from and the
// reservation's length. The owner stores the length, then the position; a
// read that straddles an update is retried (a bounded number of times: a
// live owner rewriting its intent is alive, which is all a torn read could
// then mislead about).
func (r *Ring) intent(k int) (pos, n uint64) {
	base := r.SlotOffset(k)
	wp, wn := word(r.region, base+slotIntentPos), word(r.region, base+slotIntentLen)
	for range 100 {
		p1 := wp.Load()
		n = wn.Load()
		if wp.Load() == p1 {
			return p1, n
		}
	}
	return wp.Load(), n
}
