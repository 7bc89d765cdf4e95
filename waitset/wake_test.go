package waitset_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/waitset"
	"github.com/stretchr/testify/require"
)

// pingPong sends count messages one at a time, each to a member of a set
// of members that parks (Park only: no spinning hides a missed wake-up),
// chosen by pick (nil: at random); each waits for the previous to be
// received and for a random pause, so that it lands at every point of the
// set's way to sleep. With pokes, another goroutine meanwhile ends the
// set's sleeps at random moments (as signals would), so that the set sleeps
// again in the same wait, without a membarrier. It returns the set (its
// Parks and Barriers) and the missed wake-ups seen (LateWakes), stopping at
// the first one. A message not received within stuck fails the test.
func pingPong(t *testing.T, count, members int, pick func(rng *rand.Rand) int, pokes bool) (s *waitset.Set, late uint64) {
	var rings []*ipc.Ring
	for i := range members {
		kind := ipc.SPSC
		if i%2 == 1 {
			kind = ipc.MPSC
		}
		rings = append(rings, newRing(t, ipc.Config{Capacity: 1 << 12, Kind: kind}))
	}
	return pingPongRings(t, count, rings, pick, pokes)
}

// pingPongRings is pingPong over the rings given.
func pingPongRings(t *testing.T, count int, rings []*ipc.Ring, pick func(rng *rand.Rand) int, pokes bool) (s *waitset.Set, late uint64) {
	if pick == nil {
		pick = func(rng *rand.Rand) int { return rng.IntN(len(rings)) }
	}
	var ps []*ipc.Producer
	for _, r := range rings {
		p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
		require.NoError(t, err)
		ps = append(ps, p)
	}
	s, _ = newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, rings...)
	ack, quit := make(chan struct{}), make(chan struct{})
	perr := make(chan error, 1)
	var wg sync.WaitGroup
	if pokes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(3, 4))
			for {
				select {
				case <-quit:
					return
				case <-time.After(time.Duration(rng.IntN(300)) * time.Microsecond):
					s.Poke()
				}
			}
		}()
	}
	wg.Add(1)
	defer func() {
		close(quit)
		wg.Wait()
		for _, p := range ps {
			_ = p.Close()
		}
	}()
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range count {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
			if err := ps[pick(rng)].Write(context.Background(), []byte(fmt.Sprint(i))); err != nil {
				perr <- err
				return
			}
			select {
			case <-ack:
			case <-quit:
				return
			}
		}
	}()
	before := waitset.LateWakes()
	for i := 0; i < count && late == 0; {
		ctx, cancel := context.WithTimeout(context.Background(), stuck)
		n, err := s.Read(ctx, 16, func(*waitset.Member, []byte) {})
		cancel()
		select {
		case err := <-perr:
			t.Fatalf("producer: %v", err)
		default:
		}
		require.NoError(t, err, "message %d of %d not received", i, count)
		for range n {
			ack <- struct{}{}
		}
		i += n
		late = waitset.LateWakes() - before
	}
	return s, late
}

// TestNoLostWakeup: thousands of sleeps over 8 members, each ended by a
// producer of one of them, with a sleep slice of a minute (only a wake-up
// ends a sleep in time): none is missed; the same with sleeps also ended at
// random by pokes, so that many sleeps follow another of the same wait
// without a membarrier. The same test with the set's re-check removed does
// miss them, so the test can fail.
func TestNoLostWakeup(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	count := 2000
	if testing.Short() {
		count = 300
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	s, late := pingPong(t, count, 8, nil, false)
	require.Zero(t, late, "no wake-up was missed in %d sleeps", s.Parks())
	require.Greater(t, s.Parks(), uint64(count/10), "the set slept between messages")

	// Sleeps ended at random by pokes: the set sleeps again in the same
	// wait, mostly without a membarrier; a producer's clearing of a flag
	// meanwhile must make the set announce (and fence) again.
	s, late = pingPong(t, count/2, 8, nil, true)
	require.Zero(t, late, "no wake-up was missed in %d sleeps", s.Parks())
	require.Less(t, s.Barriers(), s.Parks(), "sleeps without a membarrier were tested")
	restore()

	restore = waitset.BreakParkProtocol(true, 5*time.Millisecond)
	defer restore()
	_, late = pingPong(t, 300, 8, nil, false)
	require.NotZero(t, late, "without the re-check, wake-ups are missed, and the test sees it")
}

// TestNoLostWakeupBeyondWaitV is TestNoLostWakeup for a set of 140
// members: futex_waitv takes 127 of them (and the set's own word), a
// helper goroutine sleeps on the other 13 (chunk.go). Three messages in
// four go to a member beyond the 127th, the rest to any member; a sleep
// slice of a minute: none is missed. With the re-check removed, and every
// message to a member beyond the 127th, missed wake-ups are seen: the
// helper's sleep follows the protocol, and the test can tell.
func TestNoLostWakeupBeyondWaitV(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	const members = 140
	count := 1000
	if testing.Short() {
		count = 200
	}
	beyond := func(rng *rand.Rand) int {
		if rng.IntN(4) == 0 {
			return rng.IntN(members)
		}
		return 127 + rng.IntN(members-127)
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	s, late := pingPong(t, count, members, beyond, false)
	restore()
	require.Zero(t, late, "no wake-up was missed in %d sleeps", s.Parks())
	require.Greater(t, s.Parks(), uint64(count/10), "the set slept between messages")

	restore = waitset.BreakParkProtocol(true, 5*time.Millisecond)
	defer restore()
	_, late = pingPong(t, 300, members, func(rng *rand.Rand) int { return 127 + rng.IntN(members-127) }, false)
	require.NotZero(t, late, "without the re-check, wake-ups of members beyond the 127th are missed, and the test sees it")
}

// TestPollWithoutWaitV: on a kernel without futex_waitv the set polls, and
// still delivers.
func TestPollWithoutWaitV(t *testing.T) {
	restore := waitset.NoWaitV()
	defer restore()
	s, late := pingPong(t, 100, 8, nil, false)
	require.NotZero(t, s.Parks())
	require.Zero(t, late, "a poll is not counted as a missed wake-up")
}

// TestMoreMembersThanWaitV: futex_waitv sleeps on at most 128 words; a
// set of 130 rings sleeps on the last 3 through a helper (chunk.go), and a
// message written to the last one while it sleeps wakes it: with a sleep
// slice of a minute, no sleep runs out (the set does not poll), and the
// wake-up is the last member's (or, after a signal's spurious wake-up, the
// re-check's).
//
// The set counts its sleeps before it makes them, so a write made once
// Parks has moved may still land before the helper's futex_waitv, which
// then returns at once: the re-check delivers it, and no wake-up is
// counted. That round proves nothing either way; the test writes again in
// a new round until one is delivered by a wake-up (each round's chance of
// the early landing is small; 50 rounds bound the test, not its timing).
func TestMoreMembersThanWaitV(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	const members = 130
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	var rings []*ipc.Ring
	for range members {
		rings = append(rings, newRing(t, ipc.Config{Capacity: 1 << 10}))
	}
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, rings...)
	p := producer(t, rings[members-1])
	for round := 1; ; round++ {
		before := s.Stats()
		parks := s.Parks()
		done := make(chan *waitset.Member, 1)
		go func() {
			var from *waitset.Member
			_, err := s.Read(ctxFor(t), 1, func(m *waitset.Member, _ []byte) { from = m })
			if err != nil {
				from = nil
			}
			done <- from
		}()
		waitFor(t, func() bool { return s.Parks() > parks }, "the set sleeps")
		require.NoError(t, p.TryWrite([]byte("last")))
		require.Equal(t, ms[members-1], <-done)
		st := s.Stats()
		require.Zero(t, st.Timeouts, "no sleep ran out: nothing polls")
		require.Equal(t, st.Wakeups, ms[members-1].Stats().Wakeups, "only the last member woke the set")
		if st.Wakeups+st.Spurious > before.Wakeups+before.Spurious {
			return
		}
		require.Less(t, round, 50, "in 50 rounds, every write landed before the helper slept")
	}
}

// TestBarrierOncePerWait: a sleep that ends with nothing to do (here a
// poke of the set's own word, as a signal would) is followed, in the same
// wait, by a sleep without a membarrier (every member's flag is still set
// since the first sleep's), and a producer's message still wakes that
// second sleep (a slice of a minute: only a wake-up ends it in time).
func TestBarrierOncePerWait(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	var rings []*ipc.Ring
	for range 3 {
		rings = append(rings, newRing(t, ipc.Config{Capacity: 1 << 10}))
	}
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, rings...)
	p := producer(t, rings[2])
	done := make(chan *waitset.Member, 1)
	go func() {
		var from *waitset.Member
		if _, err := s.Read(ctxFor(t), 1, func(m *waitset.Member, _ []byte) { from = m }); err != nil {
			from = nil
		}
		done <- from
	}()
	waitFor(t, func() bool { return s.Parks() > 0 }, "the set sleeps")
	barriers := s.Barriers()
	if barriers == 0 {
		t.Skip("membarrier unavailable: the set polls")
	}
	require.Equal(t, uint64(1), barriers)
	late := waitset.LateWakes()
	s.Poke()
	waitFor(t, func() bool { return s.Parks() > 1 }, "the set sleeps again")
	require.Equal(t, barriers, s.Barriers(), "no membarrier for the second sleep")
	require.NoError(t, p.TryWrite([]byte("m")))
	require.Equal(t, ms[2], <-done)
	require.Equal(t, late, waitset.LateWakes())
	require.NotZero(t, s.Stats().Spurious, "the poke's wake-up found nothing to do")
}

// TestRingClosedBeyondWaitV: the Ring of a member beyond the 127th, whose
// word a helper sleeps on, closed while the set sleeps: its Close wakes
// the helper, which wakes the set, which drops and reports the member (a
// MemberError matching ipc.ErrClosed); Close returned, so no sleep was left
// on the word of the unmapped segment.
func TestRingClosedBeyondWaitV(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	const members = 130
	var rings []*ipc.Ring
	for range members - 1 {
		rings = append(rings, newRing(t, ipc.Config{Capacity: 1 << 10}))
	}
	last, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1 << 10})
	require.NoError(t, err)
	t.Cleanup(func() { _ = last.Close() })
	rings = append(rings, last)
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, rings...)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(ctxFor(t), 1, func(*waitset.Member, []byte) {})
		done <- err
	}()
	waitFor(t, func() bool { return s.Parks() > 0 }, "the set sleeps")
	require.NoError(t, last.Close())
	err = <-done
	require.ErrorIs(t, err, ipc.ErrClosed)
	var me *waitset.MemberError
	require.ErrorAs(t, err, &me)
	require.Equal(t, ms[members-1], me.Member)
	require.Len(t, s.Members(), members-1)
	require.Equal(t, uint64(1), s.Stats().Dropped)
}

// TestDoorbellWakeServesRinger: a sleep ended by a doorbell serves first
// the member whose producer rang it, wherever that member stands from the
// round robin's position, where the set's scan for it starts: after it,
// before it (the scan wraps), at it. 8 flagged members on one doorbell,
// one message at a time to a member in an order that jumps both ways;
// each round whose message woke the set (one that landed before the sleep
// began is found by the re-check, and proves nothing) must count the
// wake-up for that member alone. A slice of a minute: only a wake-up
// ends a sleep in time.
func TestDoorbellWakeServesRinger(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	dir := t.TempDir()
	var rings []*ipc.Ring
	var ps []*ipc.Producer
	for range 8 {
		r := bellRing(t, dir, ipc.Config{Capacity: 1 << 10, Doorbell: true})
		rings, ps = append(rings, r), append(ps, producer(t, r))
	}
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, rings...)
	order := []int{5, 2, 7, 0, 3, 3, 6, 1, 4}
	woken := 0
	for round := 0; woken < 2*len(order); round++ {
		require.Less(t, round, 400, "in 400 rounds, fewer than %d messages woke the set", 2*len(order))
		k := order[round%len(order)]
		before := s.Stats()
		parks := s.Parks()
		done := make(chan *waitset.Member, 1)
		go func() {
			var from *waitset.Member
			if _, err := s.Read(ctxFor(t), 1, func(m *waitset.Member, _ []byte) { from = m }); err != nil {
				from = nil
			}
			done <- from
		}()
		waitFor(t, func() bool { return s.Parks() > parks }, "the set sleeps")
		require.NoError(t, ps[k].TryWrite([]byte{byte(k)}))
		require.Equal(t, ms[k], <-done, "round %d: member %d's message", round, k)
		st := s.Stats()
		require.Zero(t, st.Timeouts, "no sleep ran out")
		if st.Wakeups == before.Wakeups {
			continue // the re-check found it
		}
		woken++
		require.Equal(t, before.Wakeups+1, st.Wakeups, "round %d", round)
		require.Equal(t, before.DoorbellWakeups+1, st.DoorbellWakeups, "round %d: the doorbell woke the set", round)
		for j := range ms {
			want := before.Members[j].Wakeups
			if j == k {
				want++
			}
			require.Equal(t, want, st.Members[j].Wakeups, "round %d: member %d rang, member %d's wake-ups", round, k, j)
		}
	}
}
