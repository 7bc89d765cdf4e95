package ipc

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/ring"
)

// spinSide is a waiting side over a wait line in this process's memory:
// nobody wakes it, so only park's own re-tries and timeouts end a sleep.
func spinSide() *waitSide {
	return &waitSide{
		wp: ring.WaitLine{Seq: new(atomic.Uint32), Parked: new(atomic.Uint32),
			Parks: new(atomic.Uint64), Wakeups: new(atomic.Uint64)},
		mode: new(atomic.Uint32),
	}
}

// visibleAt is a re-try whose condition holds from its k-th call on: a
// publisher's store that the waiter's loads see only from the k-th (still
// in its store buffer before).
func visibleAt(k int) (try func() (bool, error), calls *int) {
	calls = new(int)
	return func() (bool, error) {
		*calls++
		return *calls >= k, nil
	}, calls
}

// parkUntil parks as a wait does (the first park without the barrier, the
// rest with it) until try reports done; it returns how many sleeps began.
func parkUntil(t *testing.T, s *waitSide, try func() (bool, error)) (sleeps uint64) {
	for first := true; ; first = false {
		done, err := s.park(context.Background(), time.Time{}, try, first)
		require.NoError(t, err)
		if done {
			return s.wp.Parks.Load()
		}
	}
}

// TestFirstSpinSeesLateStore: a store that the waiter's re-try after its
// announcement misses, and that becomes visible a few loads later, is seen
// by the spin before the first sleep: the wait ends with no sleep at all,
// at whichever of the spin's re-tries it becomes visible. With the spin off
// the same store costs a first sleep that runs out (nobody wakes it: the
// publisher saw no one parked), and the re-try after it finds it.
func TestFirstSpinSeesLateStore(t *testing.T) {
	for _, k := range []int{1, 2, 5, firstSpins + 1} {
		s := spinSide()
		found := firstSpinFound.Load()
		try, calls := visibleAt(k)
		require.Zero(t, parkUntil(t, s, try), "visible at load %d: no sleep", k)
		require.Equal(t, k, *calls, "the wait ended at the load that saw it")
		if k > 1 {
			require.Equal(t, found+1, firstSpinFound.Load(), "the spin ended the wait")
		}
		require.Equal(t, uint32(1), s.wp.Parked.Load(), "the announcement stands until a waker or the wait's end clears it")
	}

	// Visible at the load after the spin's last: one first sleep, which
	// runs out or is interrupted; a re-try after it finds the store.
	s := spinSide()
	try, _ := visibleAt(firstSpins + 2)
	require.Equal(t, uint64(1), parkUntil(t, s, try), "visible after the spin: one sleep")

	testNoFirstSpin = true
	defer func() { testNoFirstSpin = false }()
	s = spinSide()
	found := firstSpinFound.Load()
	try, _ = visibleAt(2)
	require.Equal(t, uint64(1), parkUntil(t, s, try), "no spin: the store the spin would have seen costs a sleep")
	require.Equal(t, found, firstSpinFound.Load(), "no spin ran")
}

// TestFirstSpinBackstop: with the spin in place, a store that none of the
// re-tries before the barrier sees (the spin's included: as if it stayed
// in the publisher's store buffer until the barrier) is found by the
// barrier's re-try after the first sleep: late, never lost. The spin does
// not replace the barrier; it only makes the sleep rarer.
func TestFirstSpinBackstop(t *testing.T) {
	testSkipFirstRecheck = true
	defer func() { testSkipFirstRecheck = false }()
	s := spinSide()
	found := firstSpinFound.Load()
	try, calls := visibleAt(1)
	require.Equal(t, uint64(1), parkUntil(t, s, try), "one sleep: the first")
	require.Equal(t, 1, *calls, "only the barrier's re-try looked, and saw it")
	require.Equal(t, found, firstSpinFound.Load(), "the spin saw nothing")
}
