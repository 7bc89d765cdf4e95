package ipc_test

import (
	"context"
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
	ctx := context.Background()
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	var checks atomic.Int64
	var giveUp atomic.Bool
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: 50 * time.Millisecond, Hook: func(ipc.WaitInfo) error {
		checks.Add(1)
		if giveUp.Load() {
			return ipc.ErrFull // give the message up: a drop
		}
		return nil
	}}})
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 120)
	for p.TryWrite(msg) == nil {
	}
	require.ErrorIs(t, p.Write(ctx, msg), ipc.ErrPeerDead)
	require.NotZero(t, checks.Load(), "the first write waited")
	for i := 0; i < 3; i++ {
		checks.Store(0)
		require.ErrorIs(t, p.Write(ctx, msg), ipc.ErrPeerDead)
		require.Zero(t, checks.Load(), "write %d waited for the consumer again after ErrPeerDead", i+2)
	}

	// A consumer comes back (and reads nothing): the producer waits again.
	child := startIdleChild(t, r.Path(), "consumer")
	giveUp.Store(true)
	checks.Store(0)
	require.ErrorIs(t, p.Write(ctx, msg), ipc.ErrFull)
	require.NotZero(t, checks.Load(), "with a consumer attached the write must wait")

	// It dies: the next write waits out the peer timeout before ErrPeerDead.
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	giveUp.Store(false)
	checks.Store(0)
	require.ErrorIs(t, p.Write(ctx, msg), ipc.ErrPeerDead)
	require.NotZero(t, checks.Load())
}
