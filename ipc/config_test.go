package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
)

// TestCapacityError: a capacity that cannot be made is refused with an
// error giving the real bounds (1 KiB to ring.MaxCapacity, 64 TiB) in
// bytes and binary units, and what to use instead.
func TestCapacityError(t *testing.T) {
	const bounds = "must be a power of two from 1024 bytes (1 KiB) to 70368744177664 bytes (64 TiB); "
	for _, tc := range []struct {
		capacity uint64
		msg      string
	}{
		{3000, "capacity 3000 bytes (2.9 KiB) " + bounds + "round it to 2048 bytes (2 KiB) or 4096 bytes (4 KiB)"},
		{512, "capacity 512 bytes (512 B) " + bounds + "use 1024 bytes (1 KiB) or more"},
		{1 << 47, "capacity 140737488355328 bytes (128 TiB) " + bounds + "use 70368744177664 bytes (64 TiB) or less"},
	} {
		_, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: tc.capacity})
		require.ErrorIs(t, err, fs.ErrInvalid)
		require.Contains(t, err.Error(), tc.msg)
	}
}

// Configurations no ring, producer or consumer can follow are refused with
// fs.ErrInvalid, before anything is created or taken.
func TestConfigRefusals(t *testing.T) {
	name := testutil.Name(t)
	for _, tc := range []struct {
		what string
		cfg  ipc.Config
		opts []ipc.Option
	}{
		{"unknown kind", ipc.Config{Kind: "ring"}, nil},
		{"capacity not a power of two", ipc.Config{Capacity: 3000}, nil},
		{"max message above capacity/8", ipc.Config{Capacity: 4096, MaxMessage: 1024}, nil},
		{"spsc with producer slots", ipc.Config{Producers: 4}, nil},
		{"negative producers", ipc.Config{Kind: ipc.MPSC, Producers: -1}, nil},
		{"negative target delay", ipc.Config{TargetDelay: -time.Second}, nil},
		{"low above high", ipc.Config{Capacity: 4096, HighWater: 100, LowWater: 200}, nil},
		{"read-only", ipc.Config{}, []ipc.Option{ipc.WithReadOnly()}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			_, err := ipc.Create(name, tc.cfg, tc.opts...)
			require.ErrorIs(t, err, fs.ErrInvalid)
			_, err = ipc.Open(name)
			require.ErrorIs(t, err, fs.ErrNotExist, "nothing was created")
		})
	}

	r, err := ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 4096})
	require.NoError(t, err)
	defer r.Close()
	_, err = ipc.Create(name, ipc.Config{})
	require.ErrorIs(t, err, fs.ErrExist)
	for _, tc := range []struct {
		what string
		cfg  ipc.ProducerConfig
	}{
		{"unknown full", ipc.ProducerConfig{Full: 7}},
		{"unknown strategy", ipc.ProducerConfig{Wait: ipc.Wait{Strategy: 9}}},
		{"negative spins", ipc.ProducerConfig{Wait: ipc.Wait{Spins: -1}}},
		{"negative peer timeout", ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: -time.Second}}},
		{"negative throttle", ipc.ProducerConfig{Throttle: -time.Second}},
		{"ID out of range", ipc.ProducerConfig{ID: 3}},
		{"negative ID", ipc.ProducerConfig{ID: -1}},
	} {
		t.Run("producer "+tc.what, func(t *testing.T) {
			_, err := r.Producer(&tc.cfg)
			require.ErrorIs(t, err, fs.ErrInvalid)
		})
	}
	for _, tc := range []struct {
		what string
		cfg  ipc.ConsumerConfig
	}{
		{"unknown strategy", ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: 9}}},
		{"negative yields", ipc.ConsumerConfig{Wait: ipc.Wait{Yields: -1}}},
		{"negative stall limit", ipc.ConsumerConfig{StallLimit: -time.Second}},
		{"negative coalesce", ipc.ConsumerConfig{Coalesce: -time.Second}},
	} {
		t.Run("consumer "+tc.what, func(t *testing.T) {
			_, err := r.Consumer(&tc.cfg)
			require.ErrorIs(t, err, fs.ErrInvalid)
		})
	}
	_, err = r.Producer(&ipc.ProducerConfig{Full: ipc.DropOldest})
	require.ErrorIs(t, err, fs.ErrInvalid, "a ring created without DropOldest")

	// The ID names the slot: k is slot k-1, and a held one is busy.
	p, err := r.Producer(&ipc.ProducerConfig{ID: 2})
	require.NoError(t, err)
	st, err := p.Stats()
	require.NoError(t, err)
	require.Equal(t, 1, st.Slot)
	_, err = r.Producer(&ipc.ProducerConfig{ID: 2})
	require.ErrorIs(t, err, ipc.ErrBusy)
}

// fullRing returns a ring filled to the brim, a consumer that does not read
// (so that the producer's peer is alive) and a producer made with cfg.
func fullRing(t *testing.T, cfg *ipc.ProducerConfig) (*ipc.Ring, *ipc.Producer, *ipc.Consumer) {
	t.Helper()
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1024, MaxMessage: 120})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	p, err := r.Producer(cfg)
	require.NoError(t, err)
	for p.TryWrite(make([]byte, 120)) == nil {
	}
	return r, p, c
}

// A wait ended by a context deadline returns an error matching
// context.DeadlineExceeded, whatever the strategy, and the message counts
// as dropped; a cancelled context returns context.Canceled. The consumer's
// waits end the same way.
func TestWaitsEndWithTheContext(t *testing.T) {
	for _, s := range []ipc.Strategy{ipc.Hybrid, ipc.Spin, ipc.Yield, ipc.Park} {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			r, p, _ := fullRing(t, &ipc.ProducerConfig{Wait: ipc.Wait{Strategy: s}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			defer cancel()
			err := p.Write(ctx, make([]byte, 100))
			require.ErrorIs(t, err, context.DeadlineExceeded)
			_, err = p.WriteBatch(ctx, [][]byte{make([]byte, 100)})
			require.ErrorIs(t, err, context.DeadlineExceeded)
			_, err = p.Claim(ctx, 100)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			st, err := r.Stats()
			require.NoError(t, err)
			require.Equal(t, uint64(3), st.Drops)

			cancelled, cancel := context.WithCancel(context.Background())
			cancel()
			require.ErrorIs(t, p.Write(cancelled, make([]byte, 100)), context.Canceled)

			e, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 4096})
			require.NoError(t, err)
			defer e.Close()
			ep, err := e.Producer(nil)
			require.NoError(t, err)
			defer ep.Close()
			c, err := e.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: s}})
			require.NoError(t, err)
			_, err = c.Read(ctx, 1, func([]byte) {})
			require.ErrorIs(t, err, context.DeadlineExceeded)
			_, err = c.Read(cancelled, 1, func([]byte) {})
			require.ErrorIs(t, err, context.Canceled)
		})
	}
}

// A producer's hook returning ErrFull drops the message (counted); any
// other error ends the wait and is returned, wrapped, the message not
// counted. A consumer's hook error ends its read the same way.
func TestWaitHookErrors(t *testing.T) {
	errStop := errors.New("stop waiting")
	var answer error
	hook := func(ipc.WaitInfo) error { return answer }
	r, p, _ := fullRing(t, &ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park, Hook: hook}})
	ctx := context.Background()

	answer = ipc.ErrFull
	require.ErrorIs(t, p.Write(ctx, make([]byte, 100)), ipc.ErrFull)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Drops, "ErrFull from the hook: a drop")

	answer = errStop
	err = p.Write(ctx, make([]byte, 100))
	require.ErrorIs(t, err, errStop)
	require.NotErrorIs(t, err, ipc.ErrFull)
	st, err = r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Drops, "another error: not counted, the caller has the message")

	e, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 4096})
	require.NoError(t, err)
	defer e.Close()
	ep, err := e.Producer(nil)
	require.NoError(t, err)
	defer ep.Close()
	c, err := e.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park, Hook: hook}})
	require.NoError(t, err)
	_, err = c.Read(ctx, 1, func([]byte) {})
	require.ErrorIs(t, err, errStop)
}

// Overflow takes what does not fit, whatever Full says, and counts it.
func TestOverflowRoutes(t *testing.T) {
	var routed [][]byte
	r, p, _ := fullRing(t, &ipc.ProducerConfig{Full: ipc.Drop, Overflow: func(m []byte) error {
		routed = append(routed, append([]byte(nil), m...))
		return nil
	}})
	ctx := context.Background()
	require.NoError(t, p.Write(ctx, []byte("spill")))
	n, err := p.WriteBatch(ctx, [][]byte{[]byte("a"), []byte("b")})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, [][]byte{[]byte("spill"), []byte("a"), []byte("b")}, routed)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(3), st.Overflowed)
	require.Zero(t, st.Drops)
}

// Write looks at its context only when it has to wait: with room, a
// context whose methods panic is never called.
func TestWriteFastPathLeavesTheContext(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 4096})
	require.NoError(t, err)
	defer r.Close()
	p, err := r.Producer(nil)
	require.NoError(t, err)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	var ctx untouchable
	require.NoError(t, p.Write(ctx, []byte("one")))
	n, err := p.WriteBatch(ctx, [][]byte{[]byte("two"), []byte("three")})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	b, err := p.Claim(ctx, 8)
	require.NoError(t, err)
	require.NoError(t, p.Commit(copy(b, "four")))
	var got []string
	n, err = c.Read(ctx, 10, func(m []byte) { got = append(got, string(m)) })
	require.NoError(t, err)
	require.Equal(t, []string{"one", "two", "three", "four"}, got)
	require.Equal(t, 4, n)
}

// untouchable is a context.Context whose every method panics.
type untouchable struct{ context.Context }

func (untouchable) Deadline() (time.Time, bool) { panic("Deadline called") }
func (untouchable) Done() <-chan struct{}       { panic("Done called") }
func (untouchable) Err() error                  { panic("Err called") }
func (untouchable) Value(any) any               { panic("Value called") }

// TestContextWakeEndsWithTheWait: the wake a context's end sends a parked
// waiter (an AfterFunc that bumps and wakes the segment's futex word) has
// finished when the wait returns, so closing the Ring at once never lets it
// touch the unmapped segment. The wake is delayed here past the waiter's
// own sight of the cancellation; it used to run after the wait returned,
// and after Close: SIGSEGV (or a store into whatever was mapped there).
func TestContextWakeEndsWithTheWait(t *testing.T) {
	started, restore := ipc.DelayContextWake(20 * time.Millisecond)
	defer restore()
	restoreSlice := ipc.BreakParkProtocol(false, time.Millisecond) // the waiter sees the cancellation first
	defer restoreSlice()
	for i := 0; i < 10; i++ {
		r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1024, MaxMessage: 120})
		require.NoError(t, err)
		c, err := r.Consumer(nil)
		require.NoError(t, err)
		p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
		require.NoError(t, err)
		for p.TryWrite(make([]byte, 120)) == nil {
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Write(ctx, make([]byte, 120)) }()
		waitUntil(t, func() bool { st, _ := r.Stats(); return st.ProducerParks > 0 }, true)
		seq := c.ProducerWaitLine().Seq
		before, ran := seq.Load(), started.Load()
		cancel() // its wake starts (unless the waiter stops it first), and sleeps before touching the segment
		require.ErrorIs(t, <-done, context.Canceled)
		if started.Load() != ran {
			require.NotEqual(t, before, seq.Load(), "the wait returned while its context's wake was still to touch the segment")
		}
		require.NoError(t, p.Close())
		require.NoError(t, c.Close())
		require.NoError(t, r.Close()) // unmaps: a wake still to run would fault
	}
}
