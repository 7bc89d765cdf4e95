package ipc_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// Damage a consumer that finds nothing to read would never see: the checks
// it makes when a sleep runs out (or every park slice while it spins or
// yields). Region offset 256 is the consumer position word (docs/layout.md).

const consumerPosWord = 256

// idleConsumer creates a ring (cfg), a producer (so that the consumer's
// peer is alive) that writes n messages, and a consumer (ccfg) that reads
// them: what is left is a ring the consumer has drained.
func idleConsumer(t *testing.T, cfg ipc.Config, ccfg *ipc.ConsumerConfig, n int) (*ipc.Ring, *ipc.Producer, *ipc.Consumer) {
	t.Helper()
	r := newRing(t, cfg)
	p, err := r.Producer(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	c, err := r.Consumer(ccfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	for i := range n {
		require.NoError(t, p.TryWrite([]byte(itoa(i+1))))
	}
	return r, p, c
}

// readAsync starts a read of one message (Read, or a Batch of 1) that waits
// until ctx ends; its error comes on the channel.
func readAsync(ctx context.Context, c *ipc.Consumer, batch bool) <-chan error {
	done := make(chan error, 1)
	go func() {
		if batch {
			for _, err := range c.Batch(ctx, 1) {
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
			return
		}
		_, err := c.Read(ctx, 1, func([]byte) {})
		done <- err
	}()
	return done
}

// waitErr returns what the read sends, failing only a truly stuck test.
func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("the read never returned")
		return nil
	}
}

// TestIdleConsumerSeesPositionOverwritten: a consumer waiting on a drained
// ring whose consumer position word another process overwrote (the word
// only it writes) returns ErrCorrupt naming the word, instead of waiting
// forever while producers refuse the ring; so do its reads after that. A
// parked Read and Batch (the idle check when a sleep runs out), and a
// yielding Read (every park slice).
func TestIdleConsumerSeesPositionOverwritten(t *testing.T) {
	for _, tc := range []struct {
		name     string
		strategy ipc.Strategy
		batch    bool
	}{
		{"park-read", ipc.Park, false},
		{"park-batch", ipc.Park, true},
		{"yield-read", ipc.Yield, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _, c := idleConsumer(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 120},
				&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: tc.strategy, PeerTimeout: time.Hour}}, 10)
			n, err := c.TryRead(100, func([]byte) {})
			require.NoError(t, err)
			require.Equal(t, 10, n)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			before := c.IdleChecks()
			done := readAsync(ctx, c, tc.batch)
			waitUntil(t, func() bool { return c.IdleChecks() > before }, true) // it waits, idle
			testutil.SetRingWord(t, r.Path(), consumerPosWord, 1<<64-1)
			err = waitErr(t, done)
			require.ErrorIs(t, err, ipc.ErrCorrupt)
			require.NotErrorIs(t, err, context.DeadlineExceeded)
			require.ErrorContains(t, err, "consumer position word at region offset 256 holds 18446744073709551615")
			require.ErrorContains(t, err, "ringctl doctor")
			_, err = c.TryRead(1, func([]byte) {})
			require.ErrorIs(t, err, ipc.ErrCorrupt, "the consumer stays failed")
		})
	}
}

// TestIdleConsumerSeesTruncation: a parked consumer whose segment file is
// truncated (in pages it does not touch while it waits) returns the error
// the inspection paths give (ErrCorrupt, "truncated to N bytes from M"),
// and every read after it returns it at once, without touching the
// segment.
func TestIdleConsumerSeesTruncation(t *testing.T) {
	r, _, c := idleConsumer(t, ipc.Config{Capacity: 1 << 14, MaxMessage: 120},
		&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, 3)
	n, err := c.TryRead(100, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := c.IdleChecks()
	done := readAsync(ctx, c, false)
	waitUntil(t, func() bool { return c.IdleChecks() > before }, true)
	st, err := os.Stat(r.Path())
	require.NoError(t, err)
	// The last page of the data area: the consumer, at its start, never
	// touches it; nor does anything else this test runs.
	require.NoError(t, os.Truncate(r.Path(), st.Size()-4096))
	err = waitErr(t, done)
	require.ErrorIs(t, err, ipc.ErrCorrupt)
	require.ErrorContains(t, err, "truncated to")
	_, err2 := c.Read(ctx, 1, func([]byte) {})
	require.ErrorIs(t, err2, ipc.ErrCorrupt)
	require.Equal(t, err.Error(), err2.Error(), "the consumer stays failed with that error")
}

// TestIdleHeldConsumerNotFlagged: a consumer that holds its reads leaves
// the position word at its release point, behind its cursor: legitimate,
// and its idle checks (several) find nothing wrong; the wait ends with its
// context.
func TestIdleHeldConsumerNotFlagged(t *testing.T) {
	_, _, c := idleConsumer(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 120},
		&ipc.ConsumerConfig{Hold: true, Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, 3)
	ctx := context.Background()
	n := 0
	for _, err := range c.Batch(ctx, 3) {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 3, n, "three messages held, none released")
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	before := c.IdleChecks()
	done := readAsync(wctx, c, true)
	// Until two idle checks, or the wait ended (a flag: then the error
	// below says which).
	waitUntil(t, func() bool { return c.IdleChecks() >= before+2 || len(done) > 0 }, true)
	cancel()
	err := waitErr(t, done)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ipc.ErrCorrupt)
}

// TestIdleDropOldestNotFlagged: in a drop-oldest ring producers move the
// consumer position word (reclaiming): its consumer's idle checks do not
// compare it, and it still reads what comes after them.
func TestIdleDropOldestNotFlagged(t *testing.T) {
	_, p, c := idleConsumer(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 120, DropOldest: true},
		&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got := make(chan string, 1)
	errc := make(chan error, 1)
	before := c.IdleChecks()
	go func() {
		_, err := c.Read(ctx, 1, func(m []byte) { got <- string(m) })
		errc <- err
	}()
	waitUntil(t, func() bool { return c.IdleChecks() >= before+2 || len(errc) > 0 }, true)
	require.NoError(t, p.TryWrite([]byte("after")))
	require.NoError(t, waitErr(t, errc))
	require.Equal(t, "after", <-got)
}

// TestDeliveredSequenceOverwritten: the tester's repro in one process. An
// SPSC ring with sequences whose "last sequence delivered" word (560)
// another process set to 2^64-1: the next read returns ErrCorrupt naming
// the word, where it discarded every message as a duplicate, silently;
// the message stays in the ring, and no duplicate is counted. Legitimate
// duplicates (a restarted producer resending what InDoubt names, and an
// older message) are still discarded without error.
func TestDeliveredSequenceOverwritten(t *testing.T) {
	cfg := ipc.Config{Capacity: 1 << 12, MaxMessage: 120, Sequences: true}
	t.Run("overwritten", func(t *testing.T) {
		r, p, c := idleConsumer(t, cfg, nil, 1)
		n, err := c.TryRead(10, func([]byte) {})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		testutil.SetRingWord(t, r.Path(), 560, 1<<64-1)
		require.NoError(t, p.TryWrite([]byte("2")))
		n, err = c.TryRead(10, func([]byte) {})
		require.ErrorIs(t, err, ipc.ErrCorrupt)
		require.Zero(t, n)
		require.ErrorContains(t, err, "last sequence delivered at region offset 560 holds 18446744073709551615, past the last sequence begun 2")
		st, err := r.Stats()
		require.NoError(t, err)
		require.Zero(t, st.Duplicates)
		require.Positive(t, st.Depth, "the message stays in the ring")
		_, err = c.Read(context.Background(), 1, func([]byte) {})
		require.ErrorIs(t, err, ipc.ErrCorrupt, "the consumer stays failed")
	})
	t.Run("resends", func(t *testing.T) {
		r, p, c := idleConsumer(t, cfg, nil, 3)
		n, err := c.TryRead(10, func([]byte) {})
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.NoError(t, p.Close())
		p, err = r.Producer(nil) // a restart
		require.NoError(t, err)
		defer p.Close()
		from, to := p.InDoubt()
		ctx := context.Background()
		for s := min(from, 2); s < to; s++ {
			require.NoError(t, p.WriteSeq(ctx, s, []byte("again")))
		}
		require.NoError(t, p.WriteSeq(ctx, 2, []byte("2 again")))
		require.NoError(t, p.TryWrite([]byte("4")))
		var got []string
		n, err = c.TryRead(10, func(m []byte) { got = append(got, string(m)) })
		require.NoError(t, err)
		require.Equal(t, []string{"4"}, got)
		require.Equal(t, 1, n)
		st, err := r.Stats()
		require.NoError(t, err)
		require.Positive(t, st.Duplicates)
	})
}
