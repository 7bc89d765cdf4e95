// Flow control: the consumer's window and the soft pressure level (line 8).

package ring

import (
	"fmt"
	"sync/atomic"
)

// lowerPressure clears the soft pressure level when depth has fallen to the
// low level (or the levels were switched off). Called by the consumer when
// it loads the producer position, the moment it knows the depth exactly.
func (r *Ring) lowerPressure(depth uint64) {
	pw := word32(r.region, offPressure)
	// The pressure word: raised by producers' compare-and-swap (raisePressure);
	// the levels are values stored by SetPressureLevels (they publish nothing).
	old := pw.Load()
	if old&PressureDepth == 0 {
		return
	}
	high, low := word(r.region, offPressureHigh).Load(), word(r.region, offPressureLow).Load()
	if (high == 0 || depth <= low) && pw.CompareAndSwap(old, old&^PressureDepth) {
		word(r.region, offPressureChanges).Add(1)
	}
}

// Pressure word bits.
const (
	// PressureDepth: the depth reached the high level (and has not fallen
	// to the low level since).
	PressureDepth = 1 << 0
	// PressureDelay: queueing delay stayed above the target for an interval.
	PressureDelay = 1 << 1
)

// SetWindow narrows (or, with 0, removes) the number of bytes producers
// may fill: they treat min(window, capacity) as the capacity from their
// next reservation on. A window smaller than a record stops that record.
func (r *Ring) SetWindow(bytes uint64) { word(r.region, offWindow).Store(bytes) }

// SetPressureLevels sets the depths, in bytes, at which pressure rises
// (high) and falls again (low, at most high): hysteresis. high 0 turns
// pressure off.
func (r *Ring) SetPressureLevels(high, low uint64) error {
	if high > r.capacity || low > high {
		return fmt.Errorf("ring: pressure levels high %d, low %d: want low <= high <= capacity %d", high, low, r.capacity)
	}
	word(r.region, offPressureLow).Store(low)
	word(r.region, offPressureHigh).Store(high)
	return nil
}

func (p *Producer) initFlow(overflowed *atomic.Uint64) {
	p.window = word(p.r.region, offWindow)
	p.pHigh = word(p.r.region, offPressureHigh)
	p.pressure = word32(p.r.region, offPressure)
	p.pressureChanges = word(p.r.region, offPressureChanges)
	p.overflowed = overflowed
	p.lim = p.r.capacity
	if p.r.polled {
		// Header commit: the word at the producer position is kept zero,
		// so it must lie in free space: never fill the last word.
		p.lim -= Align
	}
}

// limit is the most bytes the ring may hold now: the capacity, or the
// consumer's window if narrower.
func (p *Producer) limit() uint64 {
	c := p.lim
	// A value stored by SetWindow: it publishes nothing.
	if w := p.window.Load(); w != 0 && w < c {
		return w
	}
	return c
}

// fastFits reports whether a reservation leaving est bytes in the ring
// (by the cached consumer position, an over-estimate) fits without looking
// at the consumer position: it fits the limit, and does not reach the
// pressure level while pressure is off (crossing it needs an exact depth).
func (p *Producer) fastFits(est uint64) bool {
	if est > p.limit() {
		return false
	}
	// Values (SetPressureLevels; the consumer's compare-and-swap lowering
	// the pressure word): nothing is published by them.
	high := p.pHigh.Load()
	return high == 0 || est < high || p.pressure.Load()&PressureDepth != 0
}

// room is the most bytes the ring may hold, by the cached consumer position,
// for a write that does not look at the consumer position: the same test
// as fastFits (est fits if est <= room), for the fast paths, which take it
// once per call (a WriteBatch's records after the first use the window and
// levels read at its start, as if they had been written at once). The
// common case, no window and no pressure levels, costs two loads of line 8
// and one test: the window and levels are still read on every call, since
// a window applies from the producer's next write (ipc's Consumer.SetWindow
// promises it) and the layout has no word that would tell a producer that
// they changed since it last looked.
func (p *Producer) room() uint64 {
	// Values (SetWindow, SetPressureLevels): they publish nothing.
	w, high := p.window.Load(), p.pHigh.Load()
	if w|high == 0 {
		return p.lim
	}
	return p.roomFlow(w, high)
}

// roomFlow is room with a window or pressure levels set.
func (p *Producer) roomFlow(w, high uint64) uint64 {
	lim := p.lim
	if w != 0 && w < lim {
		lim = w
	}
	// The pressure word: raised by producers, lowered by the consumer
	// (compare-and-swap; a value).
	if high != 0 && high <= lim && p.pressure.Load()&PressureDepth == 0 {
		return high - 1
	}
	return lim
}

// raisePressure sets the soft pressure level when depth reaches the high
// level; the consumer lowers it (Consumer.reloadProducer). It gives up
// after casTries failed compare-and-swaps (another process changing the
// word's other bits each time): the raise is retried by the next write
// that reaches the level, since fastFits and room send such a write here
// while the bit is clear.
func (p *Producer) raisePressure(depth uint64) {
	high := p.pHigh.Load()
	if high == 0 || depth < high {
		return
	}
	for range casTries {
		old := p.pressure.Load()
		if old&PressureDepth != 0 {
			return
		}
		if p.r.hook != nil {
			p.r.hook(stepPressureCAS)
		}
		if p.pressure.CompareAndSwap(old, old|PressureDepth) {
			p.pressureChanges.Add(1)
			return
		}
	}
}

// Pressure returns the ring's pressure word: 0 none; PressureDepth set when
// the depth reached the high level and has not yet fallen to the low level;
// PressureDelay set when queueing delay has stayed above the target for an
// interval (rings with timestamps).
func (p *Producer) Pressure() uint32 { return p.pressure.Load() }
