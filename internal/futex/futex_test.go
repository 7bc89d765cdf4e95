package futex

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestWaitWake(t *testing.T) {
	var w atomic.Uint32
	require.ErrorIs(t, Wait(&w, 0, time.Millisecond), ErrTimeout)
	require.NoError(t, Wait(&w, 1, time.Second), "the word differs: no wait")
	done := make(chan error)
	go func() { done <- Wait(&w, 0, 10*time.Second) }()
	time.Sleep(20 * time.Millisecond) // most likely asleep by now
	w.Store(1)
	_, err := Wake(&w, 1) // wakes it, or it had not slept and saw 1
	require.NoError(t, err)
	require.NoError(t, <-done)
}

func TestBarrier(t *testing.T) {
	if !Register() {
		t.Skip("membarrier GLOBAL_EXPEDITED unavailable")
	}
	require.True(t, Barrier())
}

func TestWaitV(t *testing.T) {
	if !WaitVAvailable() {
		t.Skip("futex_waitv unavailable (Linux < 5.16)")
	}
	var a, b atomic.Uint32
	var v Vec
	v.Add(&a, 0)
	v.Add(&b, 0)
	i, err := v.Wait(time.Millisecond)
	require.ErrorIs(t, err, ErrTimeout)
	require.Equal(t, -1, i)
	b.Store(1)
	i, err = v.Wait(time.Second)
	require.NoError(t, err, "a word differs: no wait")
	require.Equal(t, -1, i)

	v.Reset()
	v.Add(&a, 0)
	v.Add(&b, 1)
	done := make(chan int)
	go func() {
		for {
			i, err := v.Wait(10 * time.Second)
			if err != nil || i >= 0 || b.Load() != 1 {
				done <- i
				return
			}
		}
	}()
	// Whether the waiter sleeps yet or not, the bump ends its wait: it is
	// woken (index 1), or its next call sees the word changed.
	b.Add(1)
	for {
		_, err := Wake(&b, 1)
		require.NoError(t, err)
		select {
		case i := <-done:
			require.Contains(t, []int{-1, 1}, i)
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// TestMonotonicNow: the clock futex_waitv's timeout is read on, without a
// system call, stays within a bound of the system call's reading (a
// generous one: only a wrong clock or unit is off by seconds).
func TestMonotonicNow(t *testing.T) {
	for range 3 {
		got, err := monotonicNow()
		require.NoError(t, err)
		var ts unix.Timespec
		require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
		require.InDelta(t, float64(ts.Nano()), float64(got), float64(10*time.Second))
		time.Sleep(time.Millisecond)
	}
}
