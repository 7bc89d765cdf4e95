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

// TestRecoverAsksTheAttachedLiveness: liveness comes one way, with the
// attachment. A ring attached without a Liveness knows no producer dead,
// so Recover refuses (ErrInvalid) instead of guessing, and skips nothing;
// attached with one, Recover asks it about the slot whose reservation
// blocks the consumer, and skips the reservation once it answers dead.
func TestRecoverAsksTheAttachedLiveness(t *testing.T) {
	region, _ := formatRing(t, ring.Config{Kind: ring.MPSC, Capacity: 1 << 12, MaxMessage: 128, Slots: 2})
	bare, err := ring.Attach(region)
	require.NoError(t, err)
	ring.ReserveDying(t, slotProducer(t, bare, 0), []byte("lost in the crash"), ring.StepPending)
	c, err := bare.NewConsumer()
	require.NoError(t, err)
	require.True(t, c.Blocked())
	_, err = c.Recover()
	require.ErrorIs(t, err, ring.ErrInvalid)
	require.Zero(t, bare.Stats().Lost, "nothing skipped without a Liveness")

	r := attach(t, region)
	var asked []int
	setAlive(t, r, func(h int) bool { asked = append(asked, h); return false })
	c, err = r.NewConsumer()
	require.NoError(t, err)
	require.True(t, c.Blocked())
	ok, err := c.Recover()
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []int{0}, asked, "asked about the reservation's slot only")
	require.Equal(t, uint64(1), r.Stats().Lost)
}
