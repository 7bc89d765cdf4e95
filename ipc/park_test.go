package ipc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// TestPoliciesEachSide: every way of waiting, on each side, waits for the
// other side and wakes when it makes progress, in one process. Block is
// Park with a context deadline; Backoff, which no longer has a Strategy of
// its own, is an operator's override (ops.SetPolicy) of both sides, over a
// Park that would otherwise sleep on the futex: it never parks.
func TestPoliciesEachSide(t *testing.T) {
	for _, tc := range []struct {
		name     string
		strategy ipc.Strategy
		deadline bool       // the writes and the read have a context deadline (Block)
		override ops.Policy // set on both sides before they wait
	}{
		{name: "spin", strategy: ipc.Spin},
		{name: "yield", strategy: ipc.Yield},
		{name: "backoff", strategy: ipc.Park, override: ops.Backoff},
		{name: "park", strategy: ipc.Park},
		{name: "block", strategy: ipc.Park, deadline: true},
		{name: "hybrid", strategy: ipc.Hybrid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
			wait := ipc.Wait{Strategy: tc.strategy}
			p, err := r.Producer(&ipc.ProducerConfig{Wait: wait})
			require.NoError(t, err)
			defer p.Close()
			c, err := r.Consumer(&ipc.ConsumerConfig{Wait: wait})
			require.NoError(t, err)
			defer c.Close()
			if tc.override != 0 {
				require.NoError(t, ops.SetPolicy(r, tc.override, tc.override))
			}
			// ctx is what every call that waits gets: a deadline only a
			// stuck test meets, for Block.
			ctx := context.Background()
			if tc.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
			}

			// Consumer waits for data.
			got := make(chan string)
			go func() {
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				if tc.deadline {
					rctx = ctx
				}
				var s string
				_, err := c.Read(rctx, 1, func(m []byte) { s = string(m) })
				if err != nil {
					s = err.Error()
				}
				got <- s
			}()
			parks := tc.strategy == ipc.Park && tc.override == 0 || tc.strategy == ipc.Hybrid
			waitUntil(t, func() bool { // until it sleeps (or a while, for the others)
				st, _ := r.Stats()
				return parks && st.ConsumerParks > 0
			}, parks)
			require.NoError(t, p.Write(ctx, []byte("hello")))
			require.Equal(t, "hello", <-got)

			// Producer waits for room.
			msg := make([]byte, 120)
			for p.TryWrite(msg) == nil {
			}
			wrote := make(chan error)
			go func() { wrote <- p.Write(ctx, msg) }()
			waitUntil(t, func() bool {
				st, _ := r.Stats()
				return parks && st.ProducerParks > 0
			}, parks)
			n, err := c.TryRead(1, func([]byte) {})
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.NoError(t, <-wrote)

			st, err := r.Stats()
			require.NoError(t, err)
			if parks {
				require.NotZero(t, st.ConsumerParks, "the consumer slept")
				require.NotZero(t, st.ConsumerWakeups, "and was woken")
				require.NotZero(t, st.ProducerParks)
				require.NotZero(t, st.ProducerWakeups)
			}
			if tc.override != 0 {
				require.Equal(t, tc.name, st.ProducerOverride)
				require.Equal(t, tc.name, st.ConsumerOverride)
				require.Zero(t, st.ConsumerParks+st.ProducerParks, "both sides followed the override: backoff sleeps, it never parks")
			}
		})
	}
}

// TestCancelBeforeParkLoad: a context cancelled as a sleep begins, its
// AfterFunc having bumped the futex word before the sleeper loads it,
// still ends the wait at once. (The sleeper used to sleep on the bumped
// value for a whole slice, here a minute: nothing would wake it again.)
func TestCancelBeforeParkLoad(t *testing.T) {
	for _, side := range []string{"producer", "consumer"} {
		t.Run(side, func(t *testing.T) {
			r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
			park := ipc.Wait{Strategy: ipc.Park}
			c, err := r.Consumer(&ipc.ConsumerConfig{Wait: park})
			require.NoError(t, err)
			defer c.Close()
			p, err := r.Producer(&ipc.ProducerConfig{Wait: park})
			require.NoError(t, err)
			defer p.Close()
			msg := make([]byte, 120)
			if side == "producer" {
				for p.TryWrite(msg) == nil {
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			restoreHook := ipc.BeforeParkLoad(func(seq *atomic.Uint32) {
				once.Do(func() {
					v := seq.Load()
					cancel()
					for seq.Load() == v { // the AfterFunc's bump
						runtime.Gosched()
					}
				})
			})
			defer restoreHook()
			restore := ipc.BreakParkProtocol(false, time.Minute) // only a wake can end a sleep
			defer restore()
			done := make(chan error, 1)
			go func() {
				if side == "producer" {
					done <- p.Write(ctx, msg)
					return
				}
				_, err := c.Read(ctx, 1, func([]byte) {})
				done <- err
			}()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(30 * time.Second):
				// Not t.Fatal: the writer still runs; end its sleep first.
				require.NoError(t, r.Close())
				<-done
				t.Fatal("the cancellation did not end the sleep")
			}
		})
	}
}

// TestParkDeadlineAndCancel (was TestBlockTimeoutAndCancel: Block is Park
// with a context deadline): a parked producer gives up when its context's
// deadline passes, with an error that is context.DeadlineExceeded, not
// before; cancelling the context wakes a parked producer at once. Both
// give-ups count as drops.
func TestParkDeadlineAndCancel(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	c, err := r.Consumer(nil) // attached but not reading
	require.NoError(t, err)
	defer c.Close()
	park := &ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park}}
	p, err := r.Producer(park)
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 120)
	for p.TryWrite(msg) == nil {
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = p.Write(ctx, msg)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)

	// Cancelling the context wakes a parked producer at once.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error)
	_, err = r.Producer(park)
	require.Error(t, err, "spsc: one producer")
	require.NoError(t, p.Close())
	pp, err := r.Producer(park)
	require.NoError(t, err)
	defer pp.Close()
	restore := ipc.BreakParkProtocol(false, time.Minute) // only a wake can end a sleep now
	defer restore()
	go func() { done <- pp.Write(ctx, msg) }()
	waitUntil(t, func() bool { st, _ := r.Stats(); return st.ProducerParks > 0 }, true)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		// Not t.Fatal with the write still running (the deferred Close
		// would race it): end its sleep first.
		require.NoError(t, r.Close())
		<-done
		t.Fatal("the cancellation did not wake the parked producer")
	}

	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(2), st.Drops, "both give-ups are drops")
}

func TestConsumerParkDeadline(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 10})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = c.Read(ctx, 1, func([]byte) {})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestPeerDeadWhileParked: a parked producer learns that the consumer
// process died, and a parked consumer that the producer process died.
func TestPeerDeadWhileParked(t *testing.T) {
	t.Run("consumer dies", func(t *testing.T) {
		r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
		child := startIdleChild(t, r.Path(), "consumer")
		p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: 100 * time.Millisecond}})
		require.NoError(t, err)
		defer p.Close()
		msg := make([]byte, 120)
		for p.TryWrite(msg) == nil {
		}
		done := make(chan error)
		go func() { done <- p.Write(context.Background(), msg) }()
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, child.Process.Kill())
		_ = child.Wait()
		select {
		case err := <-done:
			require.ErrorIs(t, err, ipc.ErrPeerDead)
		case <-time.After(2 * time.Minute): // only a stuck test meets it
			t.Fatal("a parked producer did not learn that its consumer died")
		}
	})
	t.Run("producer dies", func(t *testing.T) {
		r := newRing(t, ipc.Config{Capacity: 1 << 10})
		child := startIdleChild(t, r.Path(), "producer")
		c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: 100 * time.Millisecond}})
		require.NoError(t, err)
		defer c.Close()
		done := make(chan error)
		go func() { _, err := c.Read(context.Background(), 1, func([]byte) {}); done <- err }()
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, child.Process.Kill())
		_ = child.Wait()
		select {
		case err := <-done:
			require.ErrorIs(t, err, ipc.ErrPeerDead)
		case <-time.After(2 * time.Minute): // only a stuck test meets it
			t.Fatal("a parked consumer did not learn that its producer died")
		}
	})
}

// startIdleChild starts a child process that takes a role on the ring and
// then sleeps until killed.
func startIdleChild(t *testing.T, path, role string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=idle-"+role, "SHMRING_T_PATH="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 6)
	_, err = out.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "ready\n", string(buf))
	return cmd
}

func idleChild(role string) error {
	r, err := ipc.Open(os.Getenv("SHMRING_T_PATH"))
	if err != nil {
		return err
	}
	switch role {
	case "idle-consumer":
		_, err = r.Consumer(nil)
	case "idle-producer":
		_, err = r.Producer(nil)
	}
	if err != nil {
		return err
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
	return nil
}

// pingPong sends count messages one at a time to a consumer that parks
// (Park only: no spinning to hide a missed wake-up). Each message
// waits for the previous one to be received, then for a random pause, so
// that it lands at every point of the consumer's way to sleep and no later
// message can rescue a missed wake-up. It returns the consumer's parks and
// the missed wake-ups seen (ipc.LateWakes); it stops at the first missed
// wake-up (each costs a whole park slice: a broken protocol would
// otherwise run for count slices). A run that is stuck fails with a
// message well before the test binary's timeout: a message not received
// within a minute, or the run not done 30 s before the test's deadline.
func pingPong(t *testing.T, count int) (parks, late uint64) {
	r := newRing(t, ipc.Config{Capacity: 1 << 12})
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Minute}})
	require.NoError(t, err)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Minute)
	if d, ok := t.Deadline(); ok {
		deadline = d.Add(-30 * time.Second)
	}
	ack, quit := make(chan struct{}), make(chan struct{})
	perr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	defer wg.Wait()
	defer close(quit) // before wg.Wait: a consumer that fails ends the producer
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < count; i++ {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
			if err := p.Write(context.Background(), []byte(fmt.Sprint(i))); err != nil {
				perr <- fmt.Errorf("write %d: %w", i, err)
				return
			}
			select {
			case <-ack:
			case <-quit:
				return
			}
		}
	}()
	before := ipc.LateWakes()
	for i := 0; i < count && late == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("pingPong: %d of %d messages received when the test's deadline neared: stuck", i, count)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := c.Read(ctx, 16, func([]byte) {})
		cancel()
		select {
		case err := <-perr:
			t.Fatalf("pingPong: producer: %v", err)
		default:
		}
		require.NoError(t, err, "pingPong: message %d of %d not received within a minute", i, count)
		for range n {
			ack <- struct{}{}
		}
		i += n
		late = ipc.LateWakes() - before
	}
	st, err := r.Stats()
	require.NoError(t, err)
	return st.ConsumerParks, late
}

// TestNoLostWakeup: thousands of park/wake cycles with no sleep that ran
// out while its message was already there. The same test with the waiter's
// re-check removed (the ordering that prevents lost wake-ups) does see
// them, so the test can fail; it stops at the first (pingPong).
func TestNoLostWakeup(t *testing.T) {
	count := 3000
	if raceEnabled {
		count = 1000
	}
	parks, late := pingPong(t, count)
	require.Zero(t, late, "no wake-up was missed in %d parks", parks)
	require.Greater(t, parks, uint64(count/10), "the consumer slept between messages")

	restore := ipc.BreakParkProtocol(true, 5*time.Millisecond)
	defer restore()
	_, late = pingPong(t, 300)
	require.NotZero(t, late, "without the re-check, wake-ups are missed, and the test sees it")
}

// TestFirstSleepLateNotLost: the first sleep of a wait goes without the
// barrier (park). A message its re-tries miss (here every one: the re-try,
// the spin's re-tries with the spin running, and the re-try after the
// sleep ran out see nothing, as if each publisher's store were still in
// its store buffer) is found by the barrier's re-try when that sleep runs
// out: late by at
// most the first sleep, never lost (no long sleep runs out with its message
// there). Without the first sleep (every park takes the barrier at once)
// the same holds, as before it existed.
func TestFirstSleepLateNotLost(t *testing.T) {
	for _, off := range []bool{false, true} {
		restore := ipc.FirstSleepRace(true, off)
		ranOut := ipc.FirstSleepsRanOut()
		parks, late := pingPong(t, 300)
		restore()
		require.Zero(t, late, "no wake-up was missed in %d parks (first sleep off: %v)", parks, off)
		if off {
			require.Equal(t, ranOut, ipc.FirstSleepsRanOut(), "no first sleep when it is off")
		}
	}
}

// TestWakeupsCoalesced: under sustained load, and with a consumer that
// sleeps between bursts, producers make far fewer wake system calls than
// they write messages.
func TestWakeupsCoalesced(t *testing.T) {
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.Config{Capacity: 1 << 16})
	require.NoError(t, err)
	defer r.Close()
	const bursts, perBurst = 50, 4000
	c, err := r.Consumer(nil) // Hybrid: spins, yields, then parks
	require.NoError(t, err)
	defer c.Close()
	done := make(chan error)
	go func() {
		p, err := r.Producer(nil)
		if err != nil {
			done <- err
			return
		}
		defer p.Close()
		msg := make([]byte, 64)
		for b := 0; b < bursts; b++ {
			for i := 0; i < perBurst; i++ {
				if err := p.Write(context.Background(), msg); err != nil {
					done <- err
					return
				}
			}
			// The consumer catches up and parks before the next burst:
			// wait for it (a condition; a pause of fixed length may be
			// too short for it on a loaded machine).
			for parked := b == bursts-1; !parked; { // after the last, the reader is done
				st, err := r.Stats()
				if err != nil {
					done <- err
					return
				}
				parked = st.ConsumerParks > uint64(b)
				time.Sleep(100 * time.Microsecond)
			}
		}
		done <- nil
	}()
	for got := 0; got < bursts*perBurst; {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		n, err := c.Read(ctx, 256, func([]byte) {})
		cancel()
		require.NoError(t, err)
		got += n
	}
	require.NoError(t, <-done)
	st, err := r.Stats()
	require.NoError(t, err)
	perMsg := float64(st.ConsumerWakeups) / float64(st.MsgsIn)
	t.Logf("%d messages, %d consumer parks, %d wake-ups: %.5f wake-ups per message", st.MsgsIn, st.ConsumerParks, st.ConsumerWakeups, perMsg)
	require.NotZero(t, st.ConsumerParks, "the consumer slept between bursts")
	require.Less(t, perMsg, 0.01)
}

// TestControlWordSwitchesPolicy: an operator's override in the segment
// changes a running producer's policy without a restart.
func TestControlWordSwitchesPolicy(t *testing.T) {
	ctx := context.Background()
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 120)
	for p.TryWrite(msg) == nil {
	}
	done := make(chan error)
	go func() { done <- p.Write(ctx, msg) }() // parks: the consumer does not read
	time.Sleep(30 * time.Millisecond)
	other, err := ipc.Open(r.Path()) // as ringctl policy does, from anywhere
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, ops.SetPolicy(other, ops.Drop, 0))
	select {
	case err := <-done:
		require.ErrorIs(t, err, ipc.ErrFull, "the parked producer now drops")
	case <-time.After(2 * time.Minute): // only a stuck test meets it
		t.Fatal("the producer did not follow the override")
	}
	require.ErrorIs(t, p.Write(ctx, msg), ipc.ErrFull)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, "drop", st.ProducerOverride)
	require.Equal(t, ops.Drop.String(), st.ProducerOverride)
	require.NoError(t, ops.SetPolicy(other, 0, 0))
	require.ErrorIs(t, ops.SetPolicy(other, ops.Policy(99), 0), ops.ErrInvalidPolicy)
	require.ErrorIs(t, ops.SetPolicy(other, 0, ops.Drop), ops.ErrInvalidPolicy, "a consumer cannot drop")
}

// TestLongPark: a consumer parked for longer than the peer timeout (its
// producer is attached, so that is fine) is woken by the producer's write:
// the wake-up counter moves.
func TestLongPark(t *testing.T) {
	if testing.Short() {
		t.Skip("parks for over a second")
	}
	r := newRing(t, ipc.Config{Capacity: 1 << 12})
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)
	defer c.Close()
	got := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := c.Read(ctx, 1, func([]byte) {})
		got <- err
	}()
	// Parked for longer than the peer timeout (1 s): more than ten 100 ms
	// slices. A condition, not a sleep: under load the reader may start
	// late and slices may run long.
	var before ipc.Stats
	waitUntil(t, func() bool {
		var err error
		before, err = r.Stats()
		require.NoError(t, err)
		return before.ConsumerParks > 10
	}, true)
	require.NoError(t, p.Write(context.Background(), []byte("wake up")))
	require.NoError(t, <-got)
	after, err := r.Stats()
	require.NoError(t, err)
	require.Greater(t, before.ConsumerParks, uint64(10), "it slept, slice after slice")
	require.Equal(t, before.ConsumerWakeups+1, after.ConsumerWakeups, "and the write woke it")
}

// waitUntil polls cond when must is set, failing if it never holds within
// 2 minutes (a bound only a stuck test meets); when it is not, it just
// waits 30 ms (for tests that pass either way).
func waitUntil(t *testing.T, cond func() bool, must bool) {
	t.Helper()
	if !must {
		time.Sleep(30 * time.Millisecond)
		return
	}
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("the condition never held")
}

// TestConsumerStartWakesParkedProducer: a consumer that takes the role
// wakes a producer asleep for room at once (one wake system call, counted),
// before any read: its start may hand room back (an MPSC consumer finishing
// a dead predecessor's release, docs/layout.md "Reading"), which the
// producer would otherwise see only at the end of its sleep slice. Fails
// without the wake in Ring.Consumer: ProducerWakeups stays 0 until a read.
func TestConsumerStartWakesParkedProducer(t *testing.T) {
	for _, cfg := range []ipc.Config{{Kind: ipc.SPSC}, {Kind: ipc.MPSC, Producers: 2}} {
		t.Run(map[ipc.Kind]string{ipc.SPSC: "spsc", ipc.MPSC: "mpsc"}[cfg.Kind], func(t *testing.T) {
			cfg.Capacity, cfg.MaxMessage = 4096, 64
			r := newRing(t, cfg)
			p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}})
			require.NoError(t, err)
			defer p.Close()
			msg := make([]byte, 64)
			for {
				if err := p.TryWrite(msg); err != nil {
					require.ErrorIs(t, err, ipc.ErrFull)
					break
				}
			}
			done := make(chan error, 1)
			go func() { done <- p.Write(context.Background(), msg) }()
			waitFor(t, time.Minute, func() bool {
				s, err := r.Stats()
				require.NoError(t, err)
				return s.ProducerParks > 0 // the parked word is set before the count
			})
			c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}})
			require.NoError(t, err)
			defer c.Close()
			s, err := r.Stats()
			require.NoError(t, err)
			require.EqualValues(t, 1, s.ProducerWakeups, "the consumer's start woke the parked producer")
			// The ring is still full: the producer sleeps again until a read.
			_, err = c.TryRead(1, func([]byte) {})
			require.NoError(t, err)
			require.NoError(t, <-done)
		})
	}
}
