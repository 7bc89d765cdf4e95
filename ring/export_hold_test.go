package ring

import "testing"

// Steps of a held Release (Consumer.Release) at which ReleaseHeldDying
// stops the real code.
const (
	StepHeldStored   = stepHeldStored   // the sequences stored, the position not
	StepHeldReleased = stepHeldReleased // the position stored
)

// ReleaseHeldDying runs c.Release(pos), the real code, and stops it as a
// consumer killed right after step would stop. It fails t if c did not get
// there; c must not be used again (its successor is a new Consumer).
func ReleaseHeldDying(t testing.TB, c *Consumer, pos uint64, step int) {
	t.Helper()
	c.hook = func(s int) {
		if s == step {
			panic(dying{})
		}
	}
	if !RunDying(func() { _ = c.Release(pos) }) {
		t.Fatalf("ReleaseHeldDying: the release never reached step %d", step)
	}
}
