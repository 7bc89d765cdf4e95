package waitset_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/waitset"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { testutil.MainWithChildren(m, childEnv, child) }

// stuck bounds a wait that only a broken set would reach.
const stuck = 2 * time.Minute

func newRing(t *testing.T, cfg ipc.Config) *ipc.Ring {
	t.Helper()
	r, err := ipc.Create(testutil.Name(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

func newSet(t *testing.T, cfg *waitset.Config, rings ...*ipc.Ring) (*waitset.Set, []*waitset.Member) {
	t.Helper()
	s, err := waitset.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	var ms []*waitset.Member
	for _, r := range rings {
		m, err := s.Join(r)
		require.NoError(t, err)
		ms = append(ms, m)
	}
	return s, ms
}

func producer(t *testing.T, r *ipc.Ring) *ipc.Producer {
	t.Helper()
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: time.Minute}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), stuck)
	t.Cleanup(cancel)
	return ctx
}

// TestReadDeliversWithIdentity: each message comes with its member, in its
// ring's order.
func TestReadDeliversWithIdentity(t *testing.T) {
	rings := []*ipc.Ring{newRing(t, ipc.Config{}), newRing(t, ipc.Config{Kind: ipc.MPSC})}
	s, ms := newSet(t, nil, rings...)
	for i, r := range rings {
		p := producer(t, r)
		for k := range 10 {
			require.NoError(t, p.TryWrite([]byte(fmt.Sprintf("%d:%d", i, k))))
		}
	}
	got := map[*waitset.Member][]string{}
	for n := 0; n < 20; {
		k, err := s.Read(ctxFor(t), 7, func(m *waitset.Member, msg []byte) { got[m] = append(got[m], string(msg)) })
		require.NoError(t, err)
		n += k
	}
	for i, m := range ms {
		require.Equal(t, rings[i], m.Ring())
		require.Len(t, got[m], 10)
		for k, msg := range got[m] {
			require.Equal(t, fmt.Sprintf("%d:%d", i, k), msg)
		}
		st := m.Stats()
		require.Equal(t, uint64(10), st.Messages)
		require.NotZero(t, st.Bytes)
	}
	require.Len(t, s.Members(), 2)
}

// TestFairness: every member busy, one flooded (its ring full, and its
// producer writing on), the others with a backlog: over many turns each
// member's share is within 10% of equal (counts, no timing).
func TestFairness(t *testing.T) {
	const members, budget, turns = 4, 8, 40
	var rings []*ipc.Ring
	for range members {
		rings = append(rings, newRing(t, ipc.Config{Capacity: 1 << 16, MaxMessage: 64}))
	}
	s, ms := newSet(t, &waitset.Config{Budget: budget}, rings...)
	msg := make([]byte, 16)
	flood := producer(t, rings[0])
	for flood.TryWrite(msg) == nil {
	}
	for _, r := range rings[1:] {
		p := producer(t, r)
		for range budget*turns + budget {
			require.NoError(t, p.TryWrite(msg))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the flood goes on while the set reads
		defer wg.Done()
		for ctx.Err() == nil {
			if err := flood.Write(ctx, msg); err != nil {
				return
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	counts := map[*waitset.Member]int{}
	total := 0
	for total < members*budget*turns {
		n, err := s.Read(ctxFor(t), 13, func(m *waitset.Member, _ []byte) { counts[m]++ })
		require.NoError(t, err)
		total += n
	}
	fair := float64(total) / members
	for i, m := range ms {
		require.InDelta(t, fair, counts[m], fair/10, "member %d got %d of %d", i, counts[m], total)
	}
}

// TestJoinLeaveWhileReading: rings join and leave while a Read waits in
// another goroutine; a joined ring's messages are delivered, a left ring's
// consumer role is free again at once, and its later messages are not
// delivered by the set.
func TestJoinLeaveWhileReading(t *testing.T) {
	s, _ := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park}})
	var mu sync.Mutex
	got := map[*waitset.Member]int{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for {
			_, err := s.Read(ctx, 16, func(m *waitset.Member, _ []byte) { mu.Lock(); got[m]++; mu.Unlock() })
			if err != nil {
				done <- err
				return
			}
		}
	}()
	count := func(m *waitset.Member) int { mu.Lock(); defer mu.Unlock(); return got[m] }
	for round := range 5 {
		r := newRing(t, ipc.Config{})
		p := producer(t, r)
		m, err := s.Join(r)
		require.NoError(t, err)
		_, err = s.Join(r)
		require.ErrorIs(t, err, ipc.ErrBusy, "a ring joins once")
		for k := range 10 {
			require.NoError(t, p.Write(ctxFor(t), []byte(strconv.Itoa(k))))
		}
		waitFor(t, func() bool { return count(m) == 10 }, "round %d: the joined ring's messages", round)
		require.NoError(t, s.Leave(m))
		require.NoError(t, s.Leave(m), "idempotent")
		require.NotContains(t, s.Members(), m)
		c, err := r.Consumer(nil) // the role is free
		require.NoError(t, err)
		require.NoError(t, p.TryWrite([]byte("after")))
		n, err := c.Read(ctxFor(t), 1, func(msg []byte) { require.Equal(t, "after", string(msg)) })
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.NoError(t, c.Close())
		require.Equal(t, 10, count(m))
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// TestPeerDeadReported: a member whose producer is gone is reported with
// an error naming its ring (ipc.ErrPeerDead), once, while the other member
// goes on delivering; it stays in the set.
func TestPeerDeadReported(t *testing.T) {
	live, dead := newRing(t, ipc.Config{}), newRing(t, ipc.Config{})
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{PeerTimeout: 20 * time.Millisecond}}, live, dead)
	pl := producer(t, live)
	pd := producer(t, dead)
	require.NoError(t, pd.TryWrite([]byte("last words")))
	require.NoError(t, pd.Close())
	var fromDead []string
	var report error
	delivered := 0
	for end := time.Now().Add(stuck); report == nil; {
		require.True(t, time.Now().Before(end), "the dead member was never reported")
		require.NoError(t, pl.TryWrite([]byte("x")))
		n, err := s.Read(ctxFor(t), 8, func(m *waitset.Member, msg []byte) {
			if m == ms[1] {
				fromDead = append(fromDead, string(msg))
			}
		})
		delivered += n
		if err != nil {
			report = err
		}
	}
	require.ErrorIs(t, report, ipc.ErrPeerDead)
	var me *waitset.MemberError
	require.ErrorAs(t, report, &me)
	require.Equal(t, ms[1], me.Member)
	require.Contains(t, report.Error(), dead.Path())
	require.Equal(t, []string{"last words"}, fromDead, "its messages first")
	require.Equal(t, uint64(1), ms[1].Stats().PeerDead)
	require.Equal(t, uint64(1), s.Stats().PeerDead)
	require.Len(t, s.Members(), 2, "a reported member stays")

	// Reported once per absence: the live member goes on without errors.
	for range 20 {
		require.NoError(t, pl.TryWrite([]byte("x")))
		_, err := s.Read(ctxFor(t), 8, func(*waitset.Member, []byte) {})
		require.NoError(t, err)
	}
	require.Equal(t, uint64(1), ms[1].Stats().PeerDead)
	require.Equal(t, uint64(1), s.Stats().PeerDead)
	require.Zero(t, s.Stats().Dropped)
}

// TestRingClosedWhileWaiting: a member's Ring closed while the set sleeps
// wakes it; the member is dropped and reported (ipc.ErrClosed), and the
// set goes on with the others.
func TestRingClosedWhileWaiting(t *testing.T) {
	a := newRing(t, ipc.Config{})
	b, err := ipc.Create(testutil.Name(t), ipc.Config{})
	require.NoError(t, err)
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Minute}}, a, b)
	producer(t, a)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(ctxFor(t), 1, func(*waitset.Member, []byte) {})
		done <- err
	}()
	waitFor(t, func() bool { return s.Parks() > 0 }, "the set sleeps")
	require.NoError(t, b.Close())
	err = <-done
	require.ErrorIs(t, err, ipc.ErrClosed)
	var me *waitset.MemberError
	require.ErrorAs(t, err, &me)
	require.Equal(t, ms[1], me.Member)
	require.Equal(t, []*waitset.Member{ms[0]}, s.Members())
	require.NoError(t, s.Leave(ms[1]), "dropped already")
	st := s.Stats()
	require.Equal(t, uint64(1), st.Dropped)
	require.Zero(t, st.PeerDead)
	require.Len(t, st.Members, 1)
	require.Equal(t, ms[0].Name(), st.Members[0].Name)
}

// TestCloseAndCancelWakeRead: Close and a cancelled context end a Read
// that sleeps.
func TestCloseAndCancelWakeRead(t *testing.T) {
	r := newRing(t, ipc.Config{})
	producer(t, r)
	restore := waitset.BreakParkProtocol(false, time.Minute) // only a wake ends a sleep
	defer restore()
	s, _ := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := s.Read(ctx, 1, func(*waitset.Member, []byte) {}); done <- err }()
	waitFor(t, func() bool { return s.Parks() > 0 }, "the set sleeps")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	parks := s.Parks()
	go func() { _, err := s.Read(context.Background(), 1, func(*waitset.Member, []byte) {}); done <- err }()
	waitFor(t, func() bool { return s.Parks() > parks }, "the set sleeps again")
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-done, ipc.ErrClosed)
	_, err := s.Read(context.Background(), 1, func(*waitset.Member, []byte) {})
	require.ErrorIs(t, err, ipc.ErrClosed)
	_, err = s.Join(r)
	require.ErrorIs(t, err, ipc.ErrClosed)
	c, err := r.Consumer(nil) // Close released the role
	require.NoError(t, err)
	require.NoError(t, c.Close())

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	s2, _ := newSet(t, nil, r)
	_, err = s2.Read(ctx, 1, func(*waitset.Member, []byte) {})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestInvalid(t *testing.T) {
	for _, cfg := range []waitset.Config{
		{Budget: -1}, {Wait: ipc.Wait{Spins: -1}}, {Wait: ipc.Wait{Strategy: 9}},
		{Wait: ipc.Wait{Hook: func(ipc.WaitInfo) error { return nil }}}, {StallLimit: -1},
		{DoorbellMode: 0o666}, {DoorbellMode: 0o602},
	} {
		_, err := waitset.New(&cfg)
		require.ErrorIs(t, err, fs.ErrInvalid, "%+v", cfg)
	}
	s, _ := newSet(t, nil)
	_, err := s.Join(nil)
	require.ErrorIs(t, err, fs.ErrInvalid)
	_, err = s.Read(context.Background(), 1, nil)
	require.ErrorIs(t, err, fs.ErrInvalid)
	//lint:ignore SA1012 testing the nil check
	_, err = s.Read(nil, 1, func(*waitset.Member, []byte) {}) //nolint:staticcheck
	require.ErrorIs(t, err, fs.ErrInvalid)
	require.ErrorIs(t, s.Leave(nil), fs.ErrInvalid)
	n, err := s.Read(context.Background(), 0, func(*waitset.Member, []byte) {})
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestZeroAllocs: a Read that delivers allocates nothing, per call or per
// message.
func TestZeroAllocs(t *testing.T) {
	rings := []*ipc.Ring{newRing(t, ipc.Config{Capacity: 1 << 20}), newRing(t, ipc.Config{Capacity: 1 << 20, Kind: ipc.MPSC})}
	s, _ := newSet(t, nil, rings...)
	msg := make([]byte, 32)
	var ps []*ipc.Producer
	for _, r := range rings {
		ps = append(ps, producer(t, r))
	}
	ctx := context.Background()
	fn := func(*waitset.Member, []byte) {}
	allocs := testing.AllocsPerRun(200, func() {
		for _, p := range ps {
			for range 16 {
				_ = p.TryWrite(msg)
			}
		}
		n, err := s.Read(ctx, 32, fn)
		if err != nil || n != 32 {
			panic(fmt.Sprint(n, err))
		}
	})
	require.Zero(t, allocs)
}

// waitFor waits until cond holds; only a stuck test reaches the deadline.
func waitFor(t *testing.T, cond func() bool, what string, args ...any) {
	t.Helper()
	for end := time.Now().Add(stuck); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never: "+what, args...)
}

var _ = errors.Is

// TestStats: the members' messages, turns and spent budgets, and the set's
// sleeps and wake-ups.
func TestStats(t *testing.T) {
	a, b := newRing(t, ipc.Config{}), newRing(t, ipc.Config{})
	s, ms := newSet(t, &waitset.Config{Budget: 2, Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, a, b)
	pa, pb := producer(t, a), producer(t, b)
	for range 5 {
		require.NoError(t, pa.TryWrite([]byte("a")))
	}
	require.NoError(t, pb.TryWrite([]byte("b")))
	// Passes: a 2 (budget spent), b 1; a 2 (spent); a 1.
	for n := 0; n < 6; {
		k, err := s.Read(ctxFor(t), 100, func(*waitset.Member, []byte) {})
		require.NoError(t, err)
		n += k
	}
	st := s.Stats()
	require.Len(t, st.Members, 2)
	require.Equal(t, waitset.MemberStats{Name: ms[0].Name(), Messages: 5, Bytes: 5, Turns: 3, Exhausted: 2}, st.Members[0])
	require.Equal(t, waitset.MemberStats{Name: ms[1].Name(), Messages: 1, Bytes: 1, Turns: 1}, st.Members[1])
	require.Zero(t, st.Sleeps, "no Read had to wait")

	// A sleep of a minute, ended by b's producer.
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(ctxFor(t), 1, func(*waitset.Member, []byte) {})
		done <- err
	}()
	waitFor(t, func() bool { return s.Parks() > 0 }, "the set sleeps")
	require.NoError(t, pb.TryWrite([]byte("b")))
	require.NoError(t, <-done)
	st = s.Stats()
	require.NotZero(t, st.Sleeps)
	require.Zero(t, st.Timeouts)
	require.Equal(t, st.Wakeups, st.Members[1].Wakeups, "b woke the set (or a signal did, and the re-check found b's message)")
	require.NotZero(t, st.Wakeups+st.Spurious)
	require.Zero(t, st.Members[0].Wakeups)
	require.Equal(t, uint64(2), st.Members[1].Messages)
}
