package ipc

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/futex"
)

// watchIdle reports whether no first sleep is registered with the watch.
func watchIdle() bool {
	firstWatch.mu.Lock()
	defer firstWatch.mu.Unlock()
	return len(firstWatch.list) == 0
}

// watchStops waits for the watch to stop ticking (its first tick with
// nothing registered blocks it until the next registration); a generous
// deadline only fails a watch that never stops.
func watchStops(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		firstWatch.mu.Lock()
		defer firstWatch.mu.Unlock()
		return firstWatch.blocked
	}, time.Minute, time.Millisecond, "the watch stops ticking with nothing registered")
}

// TestFirstSleepWatch: a first sleep of the whole firstSleep that nobody
// wakes (its re-tries blind, as if the publisher's store stayed in its
// store buffer) is woken by the watch and takes the path a timeout took:
// counted as run out, then the barrier's re-try finds the store. Nothing
// stays registered, and the watch stops ticking; a second such sleep
// starts it again.
func TestFirstSleepWatch(t *testing.T) {
	testSkipFirstRecheck = true
	defer func() { testSkipFirstRecheck = false }()
	s := spinSide()
	wakes, ranOut := firstWatchWakes.Load(), firstSleepsRanOut.Load()
	try, calls := visibleAt(1)
	require.Equal(t, uint64(1), parkUntil(t, s, try), "one sleep: the first")
	require.Equal(t, 1, *calls, "the barrier's re-try found it")
	require.Greater(t, firstWatchWakes.Load(), wakes, "the watch ended the first sleep")
	require.Equal(t, ranOut+1, firstSleepsRanOut.Load(), "counted as run out")
	require.True(t, watchIdle(), "deregistered")
	watchStops(t)

	wakes = firstWatchWakes.Load()
	try, _ = visibleAt(1)
	require.Equal(t, uint64(2), parkUntil(t, s, try), "one more sleep")
	require.Greater(t, firstWatchWakes.Load(), wakes, "the kicked watch ended it")
	watchStops(t)
}

// A first sleep shortened below firstSleep (by the caller's deadline)
// keeps its FUTEX_WAIT timeout: the watch's period would overshoot it.
func TestFirstSleepShortKeepsTimer(t *testing.T) {
	testSkipFirstRecheck = true
	defer func() { testSkipFirstRecheck = false }()
	s := spinSide()
	wakes := firstWatchWakes.Load()
	never := func() (bool, error) { return false, nil }
	deadline := time.Now().Add(firstSleep / 4)
	for first := true; time.Now().Before(deadline); first = false {
		_, err := s.park(context.Background(), deadline, never, first)
		require.NoError(t, err)
	}
	require.Equal(t, wakes, firstWatchWakes.Load(), "no sleep registered with the watch")
	require.True(t, watchIdle())
}

// Many first sleeps at once, each on its own word, some woken by a waker
// (a bump and FUTEX_WAKE, at a random moment), the rest by the watch: every
// one returns, and nothing stays registered (the race detector watches the
// registry).
func TestFirstSleepWatchMany(t *testing.T) {
	const n = 64
	for round := range 5 {
		sides := make([]*waitSide, n)
		for i := range sides {
			sides[i] = spinSide()
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, s := range sides {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A re-try that never finds the condition: only a wake-up
				// or the watch ends the first sleep.
				_, errs[i] = s.park(context.Background(), time.Time{}, func() (bool, error) { return false, nil }, true)
			}()
		}
		rng := rand.New(rand.NewPCG(uint64(round), 17))
		for _, i := range rng.Perm(n)[:n/2] {
			time.Sleep(time.Duration(rng.IntN(int(firstSleep / 8))))
			sides[i].wp.Seq.Add(1)
			_, _ = futex.Wake(sides[i].wp.Seq, math.MaxInt32)
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "round %d sleeper %d", round, i)
		}
		require.True(t, watchIdle(), "round %d: every sleep deregistered", round)
	}
	watchStops(t)
}

// With testFirstSleepTimer the first sleep takes its FUTEX_WAIT timeout,
// as before the watch (the A/B's old side).
func TestFirstSleepTimerOption(t *testing.T) {
	testSkipFirstRecheck, testFirstSleepTimer = true, true
	defer func() { testSkipFirstRecheck, testFirstSleepTimer = false, false }()
	s := spinSide()
	wakes, ranOut := firstWatchWakes.Load(), firstSleepsRanOut.Load()
	try, _ := visibleAt(1)
	require.Equal(t, uint64(1), parkUntil(t, s, try))
	require.Equal(t, wakes, firstWatchWakes.Load(), "the kernel's timeout ended it, not the watch")
	require.Equal(t, ranOut+1, firstSleepsRanOut.Load())
}
