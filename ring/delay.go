// Delay measurement: the queueing-delay histogram and the adaptive level
// of rings created with timestamps.

package ring

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"
)

// SetTargetDelay sets the adaptive level of a ring created with
// timestamps: pressure rises when every record's queueing delay stays above
// target for interval, and falls at the first record below target. target
// 0 turns it off.
func (r *Ring) SetTargetDelay(target, interval time.Duration) error {
	if !r.ts && target != 0 {
		return fmt.Errorf("ring: a target delay needs a ring created with timestamps")
	}
	if target < 0 || interval < 0 {
		return fmt.Errorf("ring: target delay %v and interval %v must not be negative", target, interval)
	}
	word(r.region, offDelayInterval).Store(uint64(interval))
	word(r.region, offTargetDelay).Store(uint64(target))
	return nil
}

// observe records the queueing delay of the data record at index i (its
// commit time is the word after its header): the histogram, the totals,
// and the adaptive pressure level. now caches the clock for the batch.
func (c *Consumer) observe(i uint64, now *int64) {
	c.observeStamp(int64(binary.LittleEndian.Uint64(c.data[i+c.r.tsOff:])), now)
}

// observeStamp records the delay of a record committed at ts.
func (c *Consumer) observeStamp(ts int64, now *int64) {
	if *now == 0 {
		*now = nanotime()
	}
	d := *now - ts
	if d < 0 && ts != 0 {
		// Committed after the batch's clock was read (a batch that caught
		// up and loaded the producer position again): read it again.
		*now = nanotime()
		d = *now - ts
	}
	trusted := d >= 0 && ts != 0
	if !trusted {
		d = 0 // a clock from another boot, or a damaged stamp: count, do not trust
	}
	b := 0
	if d > 0 {
		b = min(bits.Len64(uint64(d))-1, DelayBuckets-1)
	}
	hb := word(c.r.region, offDelayHist+uint64(b)*8)
	// Our own counters (single writer): the loads pair with nothing.
	publish(hb, hb.Load()+1)
	cnt, sum := word(c.r.region, offDelayCount), word(c.r.region, offDelaySum)
	publish(cnt, cnt.Load()+1)
	publish(sum, sum.Load()+uint64(d))
	if trusted {
		// An untrusted stamp says nothing of the queue: it neither lowers
		// the level nor starts an interval.
		c.adapt(d, *now)
	}
}

// adapt is the adaptive level, in the spirit of CoDel: when every record's
// delay has stayed above the target for a whole interval, the delay bit of
// the pressure word is raised; the first record below the target lowers it.
func (c *Consumer) adapt(d, now int64) {
	// The settings are values stored by SetTargetDelay; they publish nothing.
	target := int64(word(c.r.region, offTargetDelay).Load())
	pw := word32(c.r.region, offPressure)
	if target <= 0 {
		c.aboveSince = 0
		return
	}
	if d < target {
		c.aboveSince = 0
		if old := pw.Load(); old&PressureDelay != 0 && pw.CompareAndSwap(old, old&^PressureDelay) {
			word(c.r.region, offPressureChanges).Add(1)
		}
		return
	}
	if c.aboveSince == 0 {
		c.aboveSince = now
		return
	}
	interval := int64(word(c.r.region, offDelayInterval).Load())
	if now-c.aboveSince >= interval {
		if old := pw.Load(); old&PressureDelay == 0 && pw.CompareAndSwap(old, old|PressureDelay) {
			word(c.r.region, offPressureChanges).Add(1)
		}
	}
}
