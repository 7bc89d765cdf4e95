package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

func newRing(t *testing.T, opts ...ipc.Option) *ipc.Ring {
	t.Helper()
	r, err := ipc.Create(testutil.Name(t), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

func TestRoundTripAndStats(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<12), ipc.WithMaxMessage(256))
	require.Equal(t, uint64(1<<12), r.Capacity())
	require.Equal(t, uint64(256), r.MaxMessage())
	require.Equal(t, ipc.SPSC, r.Kind())
	p, err := r.Producer()
	require.NoError(t, err)
	c, err := r.Consumer()
	require.NoError(t, err)
	st, err := r.Stats()
	require.NoError(t, err)
	require.True(t, st.ProducerAttached)
	require.True(t, st.ConsumerAttached)

	require.NoError(t, p.Write([]byte("hello")))
	require.ErrorIs(t, p.Write(make([]byte, 257)), ipc.ErrTooLarge)
	var got string
	require.NoError(t, c.Read(context.Background(), func(m []byte) { got = string(m) }))
	require.Equal(t, "hello", got)

	st, err = r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.MsgsIn)
	require.Equal(t, uint64(5), st.BytesIn)
	require.Equal(t, uint64(1), st.MsgsOut)
	require.Equal(t, uint64(5), st.BytesOut)
	require.Zero(t, st.Depth)

	require.NoError(t, p.Close())
	require.NoError(t, c.Close())
	st, err = r.Stats()
	require.NoError(t, err)
	require.False(t, st.ProducerAttached)
	require.False(t, st.ConsumerAttached)
	require.ErrorIs(t, p.Write(nil), ipc.ErrClosed)
	_, err = c.TryRead(func([]byte) {})
	require.ErrorIs(t, err, ipc.ErrClosed)
}

func TestRolesAreExclusive(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<12))
	p, err := r.Producer()
	require.NoError(t, err)
	_, err = r.Producer()
	require.ErrorIs(t, err, ipc.ErrBusy)
	c, err := r.Consumer()
	require.NoError(t, err)
	other, err := ipc.Open(r.Path())
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Consumer()
	require.ErrorIs(t, err, ipc.ErrBusy)
	require.NoError(t, c.Close())
	c2, err := other.Consumer()
	require.NoError(t, err, "a released role can be taken again")
	require.NoError(t, c2.Close())
	require.NoError(t, p.Close())
}

func TestDropPolicyCounts(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<10), ipc.WithMaxMessage(120))
	p, err := r.Producer(ipc.WithPolicy(ipc.Drop))
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 120)
	for i := 0; i < 8; i++ {
		require.NoError(t, p.Write(msg))
	}
	require.ErrorIs(t, p.Write(msg), ipc.ErrFull)
	require.ErrorIs(t, p.Write(msg), ipc.ErrFull)
	require.ErrorIs(t, p.TryWrite(msg), ipc.ErrFull)
	n, err := p.WriteBatch([][]byte{msg, msg, msg})
	require.ErrorIs(t, err, ipc.ErrFull)
	require.Zero(t, n)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(2+3), st.Drops, "TryWrite's refusal is not a drop")
	require.Equal(t, uint64(4), st.FullEvents)
	require.Equal(t, uint64(8), st.MsgsIn)
	require.Equal(t, uint64(1<<10), st.HighWater)
}

func TestSpinWaitsForRoom(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<10), ipc.WithMaxMessage(120))
	p, err := r.Producer(ipc.WithPolicy(ipc.Spin))
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer()
	require.NoError(t, err)
	defer c.Close()
	msg := make([]byte, 120)
	for i := 0; i < 8; i++ {
		require.NoError(t, p.Write(msg))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = p.WriteContext(ctx, msg)
	require.ErrorIs(t, err, ipc.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	done := make(chan error, 1)
	go func() { done <- p.Write(msg) }() // spins until the read below frees room
	waitUntil(t, func() bool { st, _ := r.Stats(); return st.FullEvents == 2 }, true)
	ok, err := c.TryRead(func([]byte) {})
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, <-done)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(2), st.FullEvents)
	require.Equal(t, uint64(1), st.Drops, "the timed-out write is a drop")
	require.NotZero(t, st.Spins)
}

func TestReadTimeout(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<10))
	for _, pol := range []ipc.Policy{ipc.Spin, ipc.Backoff} {
		c, err := r.Consumer(ipc.WithWait(pol))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		err = c.Read(ctx, func([]byte) { t.Fatal("nothing to read") })
		cancel()
		require.ErrorIs(t, err, ipc.ErrTimeout, pol.String())
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, c.Read(ctx, func([]byte) {}), context.Canceled)
		require.NoError(t, c.Close())
	}
}

func TestConsumerResumes(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<12))
	p, err := r.Producer()
	require.NoError(t, err)
	defer p.Close()
	for _, m := range []string{"a", "b", "c"} {
		require.NoError(t, p.Write([]byte(m)))
	}
	c, err := r.Consumer()
	require.NoError(t, err)
	_, err = c.TryRead(func([]byte) {})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	c, err = r.Consumer()
	require.NoError(t, err)
	defer c.Close()
	var got []string
	_, err = c.TryReadBatch(10, func(m []byte) { got = append(got, string(m)) })
	require.NoError(t, err)
	require.Equal(t, []string{"b", "c"}, got)
}

func TestOpenErrors(t *testing.T) {
	_, err := ipc.Open(testutil.Name(t))
	require.ErrorIs(t, err, ipc.ErrNotExist)
	r := newRing(t, ipc.WithCapacity(1<<12))
	_, err = ipc.Create(r.Path())
	require.ErrorIs(t, err, ipc.ErrExist)
	_, err = ipc.Create(testutil.Name(t), ipc.WithCapacity(1000))
	require.Error(t, err)
	require.Empty(t, testutil.Leftovers()[1:], "only the one good ring exists")

	// A segment whose ring descriptor is damaged is refused with ErrCorrupt.
	f, err := os.OpenFile(r.Path(), os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xff}, 4096+16)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = ipc.Open(r.Path())
	require.ErrorIs(t, err, ipc.ErrCorrupt)
}

func TestReadOnlyInspection(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<12))
	ro, err := ipc.Open(r.Path(), ipc.WithReadOnly())
	require.NoError(t, err)
	defer ro.Close()
	_, err = ro.Stats()
	require.NoError(t, err)
	_, err = ro.Producer()
	require.Error(t, err)
}

func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := newRing(t, ipc.WithCapacity(1<<16))
	p, err := r.Producer()
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer()
	require.NoError(t, err)
	defer c.Close()
	msg := make([]byte, 64)
	ctx := context.Background()
	var sink int
	fn := func(m []byte) { sink += len(m) }
	allocs := testing.AllocsPerRun(1000, func() {
		_ = p.Write(msg)
		b, _ := p.Claim(64)
		copy(b, msg)
		_ = p.Commit()
		_ = c.Read(ctx, fn)
		_, _ = c.ReadBatch(ctx, 16, fn)
	})
	require.Zero(t, allocs)
}

// TestCoalesce: a coalescing consumer delivers everything in order, holds
// off for its delay after a short batch (the next read starts no earlier),
// not after a full one, and allocates nothing.
func TestCoalesce(t *testing.T) {
	const d = 2 * time.Millisecond
	r := newRing(t, ipc.WithCapacity(1<<16))
	p, err := r.Producer()
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(ipc.WithCoalesce(d))
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	var got []string
	fn := func(m []byte) { got = append(got, string(m)) }
	for i := 0; i < 20; i++ {
		require.NoError(t, p.Write([]byte(fmt.Sprint(i))))
	}
	n, err := c.ReadBatch(ctx, 8, fn) // full: no hold after it
	require.NoError(t, err)
	require.Equal(t, 8, n)
	n, err = c.ReadBatch(ctx, 8, fn)
	require.NoError(t, err)
	require.Equal(t, 8, n)
	start := time.Now()
	n, err = c.ReadBatch(ctx, 8, fn) // the last 4: short, so a hold follows
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.NoError(t, p.Write([]byte("20")))
	n, err = c.ReadBatch(ctx, 8, fn)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.GreaterOrEqual(t, time.Since(start), d, "the read after a short batch waited out the hold")
	for i, m := range got {
		require.Equal(t, fmt.Sprint(i), m)
	}
	if raceEnabled {
		return
	}
	msg := make([]byte, 64)
	c2fn := func([]byte) {}
	require.NoError(t, c.Close())
	c, err = r.Consumer(ipc.WithCoalesce(time.Microsecond))
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		_ = p.Write(msg)
		_, _ = c.ReadBatch(ctx, 16, c2fn)
	})
	require.Zero(t, allocs)
}

func TestRemove(t *testing.T) {
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.WithCapacity(1<<12))
	require.NoError(t, err)
	require.NoError(t, ipc.Remove(name))
	// Still usable by those who have it open.
	p, err := r.Producer()
	require.NoError(t, err)
	require.NoError(t, p.Write([]byte("x")))
	require.NoError(t, r.Close())
	require.True(t, errors.Is(ipc.Remove(name), ipc.ErrNotExist))
}

// TestPolicyNumbers: known() is a range check, which holds only while the
// policy numbers are contiguous.
func TestPolicyNumbers(t *testing.T) {
	for p := ipc.Policy(0); p < 20; p++ {
		_, err := ipc.ParsePolicy(p.String())
		require.Equal(t, err == nil, p >= ipc.Spin && p <= ipc.DropOldest, "policy %d", p)
	}
}
