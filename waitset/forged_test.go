package waitset_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/waitset"
	"github.com/stretchr/testify/require"
)

// forgedBell returns the id of a doorbell file in dir that passes every
// producer check (magic, version, id, owner) but that nobody sleeps on: the
// doorbell of another, idle set with a flagged ring in dir.
func forgedBell(t *testing.T, dir string) uint64 {
	t.Helper()
	_, others := newSet(t, nil, bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Doorbell: true}))
	id := others[0].Stats().Doorbell
	require.NotZero(t, id)
	return id
}

// readOne starts a Read of one message, waits until the set sleeps, calls
// act (which makes the message), and returns the Read's outcome.
func readOne(t *testing.T, s *waitset.Set, ctx context.Context, act func()) (int, error) {
	t.Helper()
	n, acted, err := tryReadOne(t, s, ctx, act)
	require.True(t, acted, "the Read ended before the set slept: %v", err)
	return n, err
}

// tryReadOne is readOne for a Read that may end (its context's deadline)
// before the set sleeps: then act is not called, and acted is false.
func tryReadOne(t *testing.T, s *waitset.Set, ctx context.Context, act func()) (n int, acted bool, err error) {
	t.Helper()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	parks := s.Parks()
	go func() {
		n, err := s.Read(ctx, 1, func(*waitset.Member, []byte) {})
		done <- result{n, err}
	}()
	var r result
	ended := false
	waitFor(t, func() bool {
		select {
		case r = <-done:
			ended = true
		default:
		}
		return ended || s.Parks() > parks
	}, "the set sleeps")
	if !ended {
		act()
		r = <-done
	}
	return r.n, !ended, r.err
}

// TestDoorbellForgedRestored (H36, the outsider's finding 1a): a co-tenant
// stores in line 15 the id of a doorbell that passes every producer check
// but that nobody sleeps on (another set's, idle). Without the check the
// producer rings it, finds its parked 0 and stops: the set sleeps its whole
// slice. The set finds the forged id when it prepares its sleep, stores its
// own again and counts it; the message wakes it (a slice of a minute: only
// a wake-up ends the sleep in time), and no sleep runs out.
func TestDoorbellForgedRestored(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	dir := t.TempDir()
	forged := forgedBell(t, dir)
	r := bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Kind: ipc.MPSC, Doorbell: true})
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, r)
	id := ms[0].Stats().Doorbell
	require.NotZero(t, id)
	p := producer(t, r)
	for i := range 3 {
		testutil.SetRingWord(t, r.Path(), offBellID, forged)
		n, err := readOne(t, s, ctxFor(t), func() { require.NoError(t, p.TryWrite([]byte("m"))) })
		require.NoError(t, err)
		require.Equal(t, 1, n)
		st := ms[0].Stats()
		require.Equal(t, uint64(i+1), st.DoorbellRestores, "the forged id was found and replaced")
		require.Equal(t, id, st.Doorbell, "still on its doorbell")
		require.Equal(t, id, testutil.RingWord(t, r.Path(), offBellID))
	}
	st := s.Stats()
	require.Zero(t, st.Timeouts, "every sleep was woken, none ran out")
	require.Equal(t, uint64(3), st.DoorbellRestores)
	require.Zero(t, st.MissedWakeups)
	require.Zero(t, ms[0].Stats().DoorbellFailures, "the forged doorbell passes every producer check")
}

// TestDoorbellForgedWhileAsleep (H36, finding 1b): the forged id lands
// while the set sleeps, after its check: the producer rings the forged
// doorbell and the set's sleep runs out (here at the Read's deadline).
// The pass that follows finds the message: the set counts a missed
// wake-up and moves the member to its own word, clearing line 15; from
// then on its messages wake it (a slice of a minute) and the forged id,
// stored again, is restored to 0 and counted.
func TestDoorbellForgedWhileAsleep(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	dir := t.TempDir()
	forged := forgedBell(t, dir)
	r := bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Doorbell: true})
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, r)
	require.NotZero(t, ms[0].Stats().Doorbell)
	p := producer(t, r)
	// A Read bounded by a deadline: its sleep runs out at the deadline.
	// If the sleep ran out before the forgery and the write (a loaded
	// machine), the message is drained and the round made again; if the
	// Read ended before the set slept, the round is made again.
	for round := 0; ms[0].Stats().MissedWakeups == 0; round++ {
		require.Less(t, round, 100, "the missed wake-up was never detected")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n, acted, err := tryReadOne(t, s, ctx, func() {
			testutil.SetRingWord(t, r.Path(), offBellID, forged)
			require.NoError(t, p.TryWrite([]byte("m")))
		})
		cancel()
		if !acted {
			continue // the deadline came before the set slept
		}
		if n == 0 {
			require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
			n, err = s.Read(ctxFor(t), 1, func(*waitset.Member, []byte) {})
		}
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}
	st := ms[0].Stats()
	require.Equal(t, uint64(1), st.MissedWakeups)
	require.Zero(t, st.Doorbell, "moved to its own word")
	require.Zero(t, testutil.RingWord(t, r.Path(), offBellID), "the forged id cleared")
	require.Equal(t, uint64(1), s.Stats().MissedWakeups)

	// A round above whose forgery landed before the set's check was
	// restored (and its write woke the set's doorbell): count from here.
	timeouts, restores := s.Stats().Timeouts, ms[0].Stats().DoorbellRestores
	for i := range 3 {
		testutil.SetRingWord(t, r.Path(), offBellID, forged)
		n, err := readOne(t, s, ctxFor(t), func() { require.NoError(t, p.TryWrite([]byte("m"))) })
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, restores+uint64(i+1), ms[0].Stats().DoorbellRestores, "restored to 0")
	}
	require.Equal(t, timeouts, s.Stats().Timeouts, "no sleep ran out since")
	require.Zero(t, testutil.RingWord(t, r.Path(), offBellID))
	require.Equal(t, uint64(1), ms[0].Stats().MissedWakeups)
}

// TestDeadlineIsNoTimeout (H36, finding 3): a Read bounded by a context
// deadline shorter than the sleep slice (ringctl recv --set --stats ticks)
// ends its sleep at the deadline; that is not a sleep that ran its whole
// slice, and Stats.Timeouts does not count it.
func TestDeadlineIsNoTimeout(t *testing.T) {
	r := newRing(t, ipc.Config{})
	s, _ := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, r)
	producer(t, r)
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := s.Read(ctx, 1, func(*waitset.Member, []byte) {})
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	st := s.Stats()
	require.Zero(t, st.Timeouts, "the deadline ended the sleeps, not their slice")
	require.Zero(t, st.Spurious)
}

// TestPeerDeadNeedsPresence (H36, finding 5): a member ring that never had
// a producer (none attached, no write) is not reported, however long the
// set waits on it; a member whose producer wrote and left is. The never
// member comes first, so that without the rule it would be reported first.
func TestPeerDeadNeedsPresence(t *testing.T) {
	never, gone := newRing(t, ipc.Config{}), newRing(t, ipc.Config{})
	pg := producer(t, gone)
	require.NoError(t, pg.TryWrite([]byte("bye")))
	require.NoError(t, pg.Close())
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: 20 * time.Millisecond}}, never, gone)
	var report error
	for end := time.Now().Add(stuck); report == nil; {
		require.True(t, time.Now().Before(end), "the gone member was never reported")
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := s.Read(ctx, 8, func(*waitset.Member, []byte) {})
		cancel()
		if errors.Is(err, ipc.ErrPeerDead) {
			report = err
		}
	}
	var me *waitset.MemberError
	require.ErrorAs(t, report, &me)
	require.Equal(t, ms[1], me.Member, "the ring whose producer left, not the one that never had one")
	// The never member's absence is as long as the gone one's: it would be
	// due now, and the set checks the others at the next Read.
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := s.Read(ctx, 8, func(*waitset.Member, []byte) {})
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	require.Zero(t, ms[0].Stats().PeerDead)
	require.Equal(t, uint64(1), s.Stats().PeerDead)
}
