package ipc_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// TestPeerDeadRemembered: once a producer's write has returned ErrPeerDead,
// its next writes into the full ring return ErrPeerDead at once, without
// waiting (the wait hook is never consulted), while no consumer is
// attached; a consumer's return ends that, and after it dies a write waits
// out the peer timeout again.
func TestPeerDeadRemembered(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<10), ipc.WithMaxMessage(120))
	var checks atomic.Int64
	var giveUp atomic.Bool
	p, err := r.Producer(ipc.WithPeerTimeout(50*time.Millisecond), ipc.WithWaitHook(func(ipc.WaitInfo) ipc.WaitDecision {
		checks.Add(1)
		if giveUp.Load() {
			return ipc.GiveUp
		}
		return ipc.KeepWaiting
	}))
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 120)
	for p.TryWrite(msg) == nil {
	}
	require.ErrorIs(t, p.Write(msg), ipc.ErrPeerDead)
	require.NotZero(t, checks.Load(), "the first write waited")
	for i := 0; i < 3; i++ {
		checks.Store(0)
		require.ErrorIs(t, p.Write(msg), ipc.ErrPeerDead)
		require.Zero(t, checks.Load(), "write %d waited for the consumer again after ErrPeerDead", i+2)
	}

	// A consumer comes back (and reads nothing): the producer waits again.
	child := startIdleChild(t, r.Path(), "consumer")
	giveUp.Store(true)
	checks.Store(0)
	require.ErrorIs(t, p.Write(msg), ipc.ErrFull)
	require.NotZero(t, checks.Load(), "with a consumer attached the write must wait")

	// It dies: the next write waits out the peer timeout before ErrPeerDead.
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	giveUp.Store(false)
	checks.Store(0)
	require.ErrorIs(t, p.Write(msg), ipc.ErrPeerDead)
	require.NotZero(t, checks.Load())
}
