package futex

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
