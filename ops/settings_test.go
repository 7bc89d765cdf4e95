package ops_test

import (
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// TestResetHighWater: the high watermark keeps the deepest the ring has
// been; ResetHighWater brings it down to the depth now, and it rises again
// from there. A read-only ring refuses with ErrReadOnly.
func TestResetHighWater(t *testing.T) {
	r := create(t, ipc.Config{Capacity: 4096})
	msgs := make([]string, 10)
	for i := range msgs {
		msgs[i] = string(make([]byte, 100))
	}
	produce(t, r, nil, msgs...)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	n, err := c.TryRead(8, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 8, n)
	require.NoError(t, c.Close())
	st, err := r.Stats()
	require.NoError(t, err)
	peak := st.HighWater
	require.GreaterOrEqual(t, peak, uint64(10*100))
	require.Less(t, st.Depth, peak)

	require.ErrorIs(t, ops.ResetHighWater(open(t, r.Path(), ipc.WithReadOnly())), ops.ErrReadOnly)
	st, err = r.Stats()
	require.NoError(t, err)
	require.Equal(t, peak, st.HighWater, "unchanged")

	require.NoError(t, ops.ResetHighWater(r))
	st, err = r.Stats()
	require.NoError(t, err)
	require.NotZero(t, st.Depth)
	require.Equal(t, st.Depth, st.HighWater)
	produce(t, r, nil, "more")
	st2, err := r.Stats()
	require.NoError(t, err)
	require.Greater(t, st2.HighWater, st.HighWater)
	require.Equal(t, st2.Depth, st2.HighWater)
}

// TestSetPressureLevels: the levels show in Stats; levels out of range
// (above the capacity, low above high) are refused with fs.ErrInvalid; a
// read-only ring with ErrReadOnly.
func TestSetPressureLevels(t *testing.T) {
	r := create(t, ipc.Config{Capacity: 4096})
	require.NoError(t, ops.SetPressureLevels(r, 2048, 1024))
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(2048), st.PressureHigh)
	require.Equal(t, uint64(1024), st.PressureLow)
	require.ErrorIs(t, ops.SetPressureLevels(r, 8192, 0), fs.ErrInvalid)
	require.ErrorIs(t, ops.SetPressureLevels(r, 1024, 2048), fs.ErrInvalid)
	require.ErrorIs(t, ops.SetPressureLevels(open(t, r.Path(), ipc.WithReadOnly()), 0, 0), ops.ErrReadOnly)
	st, err = r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(2048), st.PressureHigh, "unchanged")
	require.NoError(t, ops.SetPressureLevels(r, 0, 0))
	st, err = r.Stats()
	require.NoError(t, err)
	require.Zero(t, st.PressureHigh)
}

// TestSetTargetDelay: the target shows in Stats of a ring with
// timestamps; a ring without them, or a negative duration, is refused
// with fs.ErrInvalid; a read-only ring with ErrReadOnly.
func TestSetTargetDelay(t *testing.T) {
	r := create(t, ipc.Config{Capacity: 4096, Timestamps: true})
	require.NoError(t, ops.SetTargetDelay(r, 5*time.Millisecond, 100*time.Millisecond))
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, 5*time.Millisecond, st.TargetDelay)
	require.Equal(t, 100*time.Millisecond, st.DelayInterval)
	require.ErrorIs(t, ops.SetTargetDelay(r, -time.Millisecond, 0), fs.ErrInvalid)
	require.ErrorIs(t, ops.SetTargetDelay(open(t, r.Path(), ipc.WithReadOnly()), 0, 0), ops.ErrReadOnly)
	require.NoError(t, ops.SetTargetDelay(r, 0, 0))
	st, err = r.Stats()
	require.NoError(t, err)
	require.Zero(t, st.TargetDelay)

	plain := create(t, ipc.Config{Capacity: 4096})
	require.ErrorIs(t, ops.SetTargetDelay(plain, time.Millisecond, time.Millisecond), fs.ErrInvalid)
}

// TestHeader: the segment header names this process and user as creator,
// the creation time, and the file's size; it reads no shared memory, so
// it works after Close.
func TestHeader(t *testing.T) {
	before := time.Now()
	r := create(t, ipc.Config{Capacity: 4096})
	after := time.Now()
	h := ops.Header(r)
	require.Equal(t, uint32(os.Getpid()), h.CreatorPID)
	require.Equal(t, uint32(os.Getuid()), h.CreatorUID)
	created := time.Unix(0, h.CreatedNanos)
	require.False(t, created.Before(before.Truncate(time.Second)), "%v before %v", created, before)
	require.False(t, created.After(after.Add(time.Second)), "%v after %v", created, after)
	fi, err := os.Stat(r.Path())
	require.NoError(t, err)
	require.Equal(t, uint64(fi.Size()), h.TotalSize)
	require.Greater(t, h.TotalSize, h.BodySize)
	require.Greater(t, h.BodySize, uint64(4096))
	require.NotZero(t, h.Version)
	require.NoError(t, r.Close())
	require.Equal(t, h, ops.Header(r))
}

// TestSlot: Slot reads any MPSC slot, used or not, with its liveness:
// a slot never used is empty and not alive; a held one names this
// process, is alive and counts its messages; once released it is not
// alive and keeps its counters. A slot out of range (any slot of an SPSC
// ring) is fs.ErrInvalid.
func TestSlot(t *testing.T) {
	r := create(t, ipc.Config{Kind: ipc.MPSC, Capacity: 4096, Producers: 4, Sequences: true})
	sl, err := ops.Slot(r, 3)
	require.NoError(t, err)
	require.Equal(t, 3, sl.Slot)
	require.Zero(t, sl.PID)
	require.False(t, sl.Alive)

	p, err := r.Producer(&ipc.ProducerConfig{ID: 2})
	require.NoError(t, err)
	require.NoError(t, p.Write(ctx(t), []byte("x")))
	require.NoError(t, p.Write(ctx(t), []byte("y")))
	sl, err = ops.Slot(open(t, r.Path(), ipc.WithReadOnly()), 1)
	require.NoError(t, err)
	require.Equal(t, 1, sl.Slot)
	require.Equal(t, uint32(os.Getpid()), sl.PID)
	require.True(t, sl.Alive)
	require.Equal(t, uint64(2), sl.MsgsIn)
	require.Equal(t, uint64(3), sl.NextSeq)
	ps, err := p.Stats()
	require.NoError(t, err)
	ps.Heartbeat = sl.Heartbeat // refreshed every second meanwhile, perhaps
	require.Equal(t, ps, sl, "what the producer itself sees")
	require.NoError(t, p.Close())
	sl, err = ops.Slot(r, 1)
	require.NoError(t, err)
	require.False(t, sl.Alive)
	require.Equal(t, uint64(2), sl.MsgsIn)

	for _, i := range []int{-1, 4} {
		_, err = ops.Slot(r, i)
		require.ErrorIs(t, err, fs.ErrInvalid, i)
	}
	_, err = ops.Slot(create(t, ipc.Config{Capacity: 4096}), 0)
	require.ErrorIs(t, err, fs.ErrInvalid)
}
