package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// newRing creates a ring named after the test, closed when it ends.
func newRing(t *testing.T, cfg ipc.Config, opts ...ipc.Option) *ipc.Ring {
	t.Helper()
	r, err := ipc.Create(testutil.Name(t), cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// itoa formats i (tests that build messages without fmt).
func itoa(i int) string {
	b := []byte{}
	if i == 0 {
		return "0"
	}
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestRoundTripAndStats(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 256})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1<<12), st.Capacity)
	require.Equal(t, uint64(256), st.MaxMessage)
	require.Equal(t, ipc.SPSC, st.Kind)
	require.True(t, st.ProducerAttached)
	require.True(t, st.ConsumerAttached)

	ctx := context.Background()
	require.NoError(t, p.Write(ctx, []byte("hello")))
	require.ErrorIs(t, p.Write(ctx, make([]byte, 257)), ipc.ErrTooLarge)
	var got string
	n, err := c.Read(ctx, 1, func(m []byte) { got = string(m) })
	require.NoError(t, err)
	require.Equal(t, 1, n)
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
	require.ErrorIs(t, p.Write(ctx, nil), ipc.ErrClosed)
	_, err = c.TryRead(1, func([]byte) {})
	require.ErrorIs(t, err, ipc.ErrClosed)
}

func TestRolesAreExclusive(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 12})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	_, err = r.Producer(nil)
	require.ErrorIs(t, err, ipc.ErrBusy)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	other, err := ipc.Open(r.Path())
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Consumer(nil)
	require.ErrorIs(t, err, ipc.ErrBusy)
	require.NoError(t, c.Close())
	c2, err := other.Consumer(nil)
	require.NoError(t, err, "a released role can be taken again")
	require.NoError(t, c2.Close())
	require.NoError(t, p.Close())
}

func TestDropPolicyCounts(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	require.NoError(t, err)
	defer p.Close()
	ctx := context.Background()
	msg := make([]byte, 120)
	for i := 0; i < 8; i++ {
		require.NoError(t, p.Write(ctx, msg))
	}
	require.ErrorIs(t, p.Write(ctx, msg), ipc.ErrFull)
	require.ErrorIs(t, p.Write(ctx, msg), ipc.ErrFull)
	require.ErrorIs(t, p.TryWrite(msg), ipc.ErrFull)
	n, err := p.WriteBatch(ctx, [][]byte{msg, msg, msg})
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
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Spin}})
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	msg := make([]byte, 120)
	for i := 0; i < 8; i++ {
		require.NoError(t, p.Write(context.Background(), msg))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = p.Write(ctx, msg)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	done := make(chan error, 1)
	go func() { done <- p.Write(context.Background(), msg) }() // spins until the read below frees room
	waitUntil(t, func() bool { st, _ := r.Stats(); return st.FullEvents == 2 }, true)
	n, err := c.TryRead(1, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, <-done)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(2), st.FullEvents)
	require.Equal(t, uint64(1), st.Drops, "the timed-out write is a drop")
	require.NotZero(t, st.Spins)
}

func TestReadTimeout(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 10})
	// Backoff, no longer a consumer's own choice, became Park (which beats
	// sleeping: it is woken early).
	for name, s := range map[string]ipc.Strategy{"spin": ipc.Spin, "park": ipc.Park} {
		c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: s}})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		_, err = c.Read(ctx, 1, func([]byte) { t.Fatal("nothing to read") })
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, name)
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		_, err = c.Read(ctx, 1, func([]byte) {})
		require.ErrorIs(t, err, context.Canceled, name)
		require.NoError(t, c.Close())
	}
}

func TestConsumerResumes(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 12})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	for _, m := range []string{"a", "b", "c"} {
		require.NoError(t, p.Write(context.Background(), []byte(m)))
	}
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	_, err = c.TryRead(1, func([]byte) {})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	c, err = r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	var got []string
	_, err = c.TryRead(10, func(m []byte) { got = append(got, string(m)) })
	require.NoError(t, err)
	require.Equal(t, []string{"b", "c"}, got)
}

func TestOpenErrors(t *testing.T) {
	_, err := ipc.Open(testutil.Name(t))
	require.ErrorIs(t, err, fs.ErrNotExist)
	// Said once, with what to do (not the errno's text and then fs's).
	require.Contains(t, err.Error(), "no such ring (create it first, or check the name and the directory): file does not exist")
	require.NotContains(t, err.Error(), "no such file or directory")
	err = ipc.Remove(testutil.Name(t))
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Contains(t, err.Error(), "no such ring (check the name and the directory): file does not exist")
	require.NotContains(t, err.Error(), "no such file or directory")
	r := newRing(t, ipc.Config{Capacity: 1 << 12})
	_, err = ipc.Create(r.Path(), ipc.Config{})
	require.ErrorIs(t, err, fs.ErrExist)
	_, err = ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1000})
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

// TestReadOnlyInspection: a ring opened WithReadOnly gives Stats but no
// producer or consumer, refused with an error an ipc-only caller can
// test (fs.ErrPermission) that names the ring and says what to do.
func TestReadOnlyInspection(t *testing.T) {
	for _, kind := range []ipc.Kind{ipc.SPSC, ipc.MPSC} {
		t.Run(string(kind), func(t *testing.T) {
			r := newRing(t, ipc.Config{Kind: kind, Capacity: 1 << 12})
			ro, err := ipc.Open(r.Path(), ipc.WithReadOnly())
			require.NoError(t, err)
			defer ro.Close()
			_, err = ro.Stats()
			require.NoError(t, err)
			_, perr := ro.Producer(nil)
			_, cerr := ro.Consumer(nil)
			for _, err := range []error{perr, cerr} {
				require.ErrorIs(t, err, fs.ErrPermission)
				require.Contains(t, err.Error(), r.Path())
				require.Contains(t, err.Error(), "open it without WithReadOnly to produce or consume")
			}
		})
	}
}

func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := newRing(t, ipc.Config{Capacity: 1 << 16})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	msg := make([]byte, 64)
	ctx := context.Background()
	var sink int
	fn := func(m []byte) { sink += len(m) }
	allocs := testing.AllocsPerRun(1000, func() {
		_ = p.Write(ctx, msg)
		b, _ := p.Claim(ctx, 64)
		copy(b, msg)
		_ = p.Commit(64)
		_, _ = c.Read(ctx, 1, fn)
		_, _ = c.Read(ctx, 16, fn)
	})
	require.Zero(t, allocs)
}

// TestCoalesce: a coalescing consumer delivers everything in order, holds
// off for its delay after a short batch (the next read starts no earlier),
// not after a full one, and allocates nothing.
func TestCoalesce(t *testing.T) {
	const d = 2 * time.Millisecond
	r := newRing(t, ipc.Config{Capacity: 1 << 16})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Coalesce: d})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	var got []string
	fn := func(m []byte) { got = append(got, string(m)) }
	for i := 0; i < 20; i++ {
		require.NoError(t, p.Write(ctx, []byte(fmt.Sprint(i))))
	}
	n, err := c.Read(ctx, 8, fn) // full: no hold after it
	require.NoError(t, err)
	require.Equal(t, 8, n)
	n, err = c.Read(ctx, 8, fn)
	require.NoError(t, err)
	require.Equal(t, 8, n)
	start := time.Now()
	n, err = c.Read(ctx, 8, fn) // the last 4: short, so a hold follows
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.NoError(t, p.Write(ctx, []byte("20")))
	n, err = c.Read(ctx, 8, fn)
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
	c, err = r.Consumer(&ipc.ConsumerConfig{Coalesce: time.Microsecond})
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		_ = p.Write(ctx, msg)
		_, _ = c.Read(ctx, 16, c2fn)
	})
	require.Zero(t, allocs)
}

func TestRemove(t *testing.T) {
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.Config{Capacity: 1 << 12})
	require.NoError(t, err)
	require.NoError(t, ipc.Remove(name))
	// Still usable by those who have it open.
	p, err := r.Producer(nil)
	require.NoError(t, err)
	require.NoError(t, p.Write(context.Background(), []byte("x")))
	require.NoError(t, r.Close())
	require.True(t, errors.Is(ipc.Remove(name), fs.ErrNotExist))
}

// TestPolicyNumbers: ipc's known() is a range check over the segment's
// override numbers, which holds only while they are contiguous: every
// number from Spin to DropOldest has a name (ops.ParsePolicy reads it
// back), and no other does.
func TestPolicyNumbers(t *testing.T) {
	for p := ops.Policy(0); p < 20; p++ {
		_, err := ops.ParsePolicy(p.String())
		require.Equal(t, err == nil, p >= ops.Spin && p <= ops.DropOldest, "policy %d", p)
	}
}

// TestResendWithSequences (was TestRetryWithSequences, with ipc.Retry,
// which is gone: the caller now retries in its own loop): a Drop producer
// writing into a ring its slow consumer lets fill retries each refused
// message with its sequence; a producer restarted mid-way under the same ID
// resends the last message with the same sequence, and every message is
// delivered exactly once.
func TestResendWithSequences(t *testing.T) {
	r := newRing(t, ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 1 << 10, MaxMessage: 64, Sequences: true})
	// The producer is away for a moment at its restart: only a stuck test
	// leaves the consumer without one for a minute.
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{PeerTimeout: time.Minute}})
	require.NoError(t, err)
	defer c.Close()
	var got []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(got) < 200 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			_, err := c.Read(ctx, 4, func(m []byte) { got = append(got, string(m)) })
			cancel()
			if err != nil {
				return
			}
			time.Sleep(100 * time.Microsecond) // a slow consumer: the ring fills
		}
	}()
	ctx := context.Background()
	resend := func(p *ipc.Producer, seq uint64, msg []byte) error {
		for end := time.Now().Add(2 * time.Minute); ; runtime.Gosched() { // only a stuck test meets the end
			err := p.WriteSeq(ctx, seq, msg)
			if !errors.Is(err, ipc.ErrFull) || time.Now().After(end) {
				return err
			}
		}
	}
	pcfg := &ipc.ProducerConfig{ID: 2, Full: ipc.Drop} // slot 1
	p, err := r.Producer(pcfg)
	require.NoError(t, err)
	for i := 0; i < 200; i++ {
		if i == 100 { // restart: the new producer resends message 99 with its sequence
			require.NoError(t, p.Close())
			p, err = r.Producer(pcfg)
			require.NoError(t, err)
			_, to := p.InDoubt()
			require.Equal(t, uint64(101), to)
			require.NoError(t, resend(p, 100, []byte("msg 99")))
		}
		ps, err := p.Stats()
		require.NoError(t, err)
		require.NoError(t, resend(p, ps.NextSeq, []byte("msg "+itoa(i))))
	}
	require.NoError(t, p.Close())
	<-done
	require.Len(t, got, 200)
	for i, m := range got {
		require.Equal(t, "msg "+itoa(i), m)
	}
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Duplicates)
	require.NotZero(t, st.Drops, "the ring was full at times: resends happened")
}
