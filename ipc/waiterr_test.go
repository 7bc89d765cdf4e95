package ipc_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// TestPeerDeadSays: the ErrPeerDead a wait returns names the ring, which
// side is gone (no consumer, no producer), for how long, and what to do;
// a producer returning it again for every message (the peerGone fast
// path) allocates nothing.
func TestPeerDeadSays(t *testing.T) {
	ctx := context.Background()
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	wait := ipc.Wait{PeerTimeout: 20 * time.Millisecond}
	p, err := r.Producer(&ipc.ProducerConfig{Wait: wait})
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 120)
	for p.TryWrite(msg) == nil {
	}
	err = p.Write(ctx, msg)
	require.ErrorIs(t, err, ipc.ErrPeerDead)
	require.Equal(t, `ipc: "`+r.Path()+`": no consumer for 20ms (Wait.PeerTimeout): start a consumer (ringctl recv `+r.Path()+`) or raise Wait.PeerTimeout: peer gone`, err.Error())
	again := p.Write(ctx, msg)
	require.ErrorIs(t, again, ipc.ErrPeerDead)
	require.Equal(t, err.Error(), again.Error(), "the fast path says the same")
	if !raceEnabled { // the race detector allocates
		allocs := testing.AllocsPerRun(100, func() {
			if !errors.Is(p.Write(ctx, msg), ipc.ErrPeerDead) {
				panic("not ErrPeerDead")
			}
		})
		require.Zero(t, allocs, "a producer returning ErrPeerDead per message allocates")
	}
	require.NoError(t, p.Close())

	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: wait})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.TryRead(100, func([]byte) {}) // empty the ring: the read below waits
	require.NoError(t, err)
	_, err = c.Read(ctx, 1, func([]byte) {})
	require.ErrorIs(t, err, ipc.ErrPeerDead)
	require.Contains(t, err.Error(), `ipc: "`+r.Path()+`": no producer for 20ms (Wait.PeerTimeout): start a producer, or raise Wait.PeerTimeout`)
}

// TestDeadlineSays: a wait ended by its context's deadline says which wait
// gave up and why, matches context.DeadlineExceeded, no longer claims to
// be an I/O timeout (os.ErrDeadlineExceeded), and allocates nothing.
func TestDeadlineSays(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	wait := ipc.Wait{Strategy: ipc.Spin, PeerTimeout: time.Hour} // no ErrPeerDead here
	p, err := r.Producer(&ipc.ProducerConfig{Wait: wait})
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 120)
	for p.TryWrite(msg) == nil {
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	err = p.Write(expired, msg)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Equal(t, "ipc: gave up waiting for room: the context's deadline passed: context deadline exceeded", err.Error())
	if !raceEnabled { // the race detector allocates
		allocs := testing.AllocsPerRun(100, func() {
			if !errors.Is(p.Write(expired, msg), context.DeadlineExceeded) {
				panic("not DeadlineExceeded")
			}
		})
		require.Zero(t, allocs, "a write giving up at its deadline allocates")
	}
	// A deadline the wait sees on the clock before the context says so
	// reads the same.
	soon, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	err = p.Write(soon, msg)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, "ipc: gave up waiting for room: the context's deadline passed: context deadline exceeded", err.Error())
	require.NoError(t, p.Close())

	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: wait})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.TryRead(100, func([]byte) {})
	require.NoError(t, err)
	_, err = c.Read(expired, 1, func([]byte) {})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Equal(t, "ipc: gave up waiting for data: the context's deadline passed: context deadline exceeded", err.Error())
}
