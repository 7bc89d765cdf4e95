package ring_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/ring"
)

// holderConsumer is the holder testLiveness's function is asked about for
// the consumer role; producers are their slot numbers.
const holderConsumer = -1

// testLiveness is the Liveness the tests attach their rings with: a test
// sets whom it holds alive as it goes (setAlive); until then, everyone.
type testLiveness struct {
	alive atomic.Pointer[func(holder int) bool]
}

func (l *testLiveness) ask(holder int) bool {
	f := l.alive.Load()
	return f == nil || (*f)(holder)
}

func (l *testLiveness) SlotAlive(i int) bool { return l.ask(i) }
func (l *testLiveness) ConsumerAlive() bool  { return l.ask(holderConsumer) }

// livenesses maps each ring attached by attach to its testLiveness.
var livenesses sync.Map

// attach attaches region with a testLiveness that setAlive controls.
func attach(t testing.TB, region []byte) *ring.Ring {
	t.Helper()
	l := &testLiveness{}
	r, err := ring.AttachWithLiveness(region, l)
	require.NoError(t, err)
	livenesses.Store(r, l)
	t.Cleanup(func() { livenesses.Delete(r) })
	return r
}

// setAlive makes the Liveness r was attached with answer with alive:
// holderConsumer for the consumer, else a producer slot.
func setAlive(t testing.TB, r *ring.Ring, alive func(holder int) bool) {
	t.Helper()
	l, ok := livenesses.Load(r)
	require.True(t, ok, "the ring was not attached by attach")
	l.(*testLiveness).alive.Store(&alive)
}

// recoverWith is c.Recover with the Liveness of c's ring answering alive
// about producer slots.
func recoverWith(t testing.TB, c *ring.Consumer, alive func(slot int) bool) (bool, error) {
	t.Helper()
	setAlive(t, c.Ring(), alive)
	return c.Recover()
}
