package ring

import "sync/atomic"

// FastRead reports whether c's reads take the fast path (Consumer.fast).
func FastRead(c *Consumer) bool { return c.fast }

// SlowReads turns c's fast read path off: its reads take the general path,
// for tests that compare the two.
func SlowReads(c *Consumer) { c.plain = false; c.setFast() }

// ForgetConsumer makes p believe the consumer has read everything it
// wrote: its next writes ignore the consumer position, as a damaged or
// hostile producer's would.
func ForgetConsumer(p *Producer) { p.consCached = p.pos }

// SetRingHook installs fn, called at the steps of r's bounded
// compare-and-swap loops (StepHighWaterCAS, StepPressureCAS).
func SetRingHook(r *Ring, fn func(step int)) { r.hook = fn }

// Steps of the bounded compare-and-swap loops (SetRingHook).
const (
	StepHighWaterCAS = stepHighWaterCAS
	StepPressureCAS  = stepPressureCAS
	CASTries         = casTries
)

// HighWaterWord returns r's high watermark word, for a test that plays a
// co-tenant storing to it.
func HighWaterWord(r *Ring) *atomic.Uint64 { return word(r.region, offHighWater) }

// PressureWord returns r's pressure word, for a test that plays a
// co-tenant changing it.
func PressureWord(r *Ring) *atomic.Uint32 { return word32(r.region, offPressure) }

// StepReleaseMarked is the step of an MPSC overwrite ring's release at
// which Ring.hook is called (SetRingHook).
const StepReleaseMarked = stepReleaseMarked

// PublishPadding plays a hostile MPSC producer: it writes a committed
// padding record of 8 bytes (a header) at the frontier and moves the
// frontier past it, whatever room the consumer position leaves.
func PublishPadding(r *Ring) {
	p := word(r.region, offProducerPos)
	pos := p.Load()
	word(r.data, pos&(r.capacity-1)).Store(makeHeader(0, 0, TypePadding))
	p.Store(pos + Align)
}
