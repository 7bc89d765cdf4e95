package ipc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// TestPoliciesEachSide: every waiting policy, on each side, waits for the
// other side and wakes when it makes progress, in one process.
func TestPoliciesEachSide(t *testing.T) {
	for _, pol := range []ipc.Policy{ipc.Spin, ipc.Yield, ipc.Backoff, ipc.Park, ipc.Block, ipc.Hybrid} {
		t.Run(pol.String(), func(t *testing.T) {
			r := newRing(t, ipc.WithCapacity(1<<10), ipc.WithMaxMessage(120))
			p, err := r.Producer(ipc.WithPolicy(pol), ipc.WithTimeout(2*time.Minute))
			require.NoError(t, err)
			defer p.Close()
			c, err := r.Consumer(ipc.WithWait(pol))
			require.NoError(t, err)
			defer c.Close()

			// Consumer waits for data.
			got := make(chan string)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				var s string
				err := c.Read(ctx, func(m []byte) { s = string(m) })
				if err != nil {
					s = err.Error()
				}
				got <- s
			}()
			parks := pol == ipc.Park || pol == ipc.Block || pol == ipc.Hybrid
			waitUntil(t, func() bool { // until it sleeps (or a while, for the others)
				st, _ := r.Stats()
				return parks && st.ConsumerParks > 0
			}, parks)
			require.NoError(t, p.Write([]byte("hello")))
			require.Equal(t, "hello", <-got)

			// Producer waits for room.
			msg := make([]byte, 120)
			for p.TryWrite(msg) == nil {
			}
			wrote := make(chan error)
			go func() { wrote <- p.Write(msg) }()
			waitUntil(t, func() bool {
				st, _ := r.Stats()
				return parks && st.ProducerParks > 0
			}, parks)
			n, err := c.TryReadBatch(1, func([]byte) {})
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
		})
	}
}

func TestBlockTimeoutAndCancel(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<10), ipc.WithMaxMessage(120))
	c, err := r.Consumer() // attached but not reading
	require.NoError(t, err)
	defer c.Close()
	p, err := r.Producer(ipc.WithPolicy(ipc.Block), ipc.WithTimeout(50*time.Millisecond))
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 120)
	for p.TryWrite(msg) == nil {
	}
	start := time.Now()
	err = p.Write(msg)
	require.ErrorIs(t, err, ipc.ErrTimeout)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)

	// Cancelling the context wakes a parked producer at once.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	_, err = r.Producer(ipc.WithPolicy(ipc.Park))
	require.Error(t, err, "spsc: one producer")
	require.NoError(t, p.Close())
	pp, err := r.Producer(ipc.WithPolicy(ipc.Park))
	require.NoError(t, err)
	defer pp.Close()
	restore := ipc.BreakParkProtocol(false, time.Minute) // only a wake can end a sleep now
	defer restore()
	go func() { done <- pp.WriteContext(ctx, msg) }()
	waitUntil(t, func() bool { st, _ := r.Stats(); return st.ProducerParks > 0 }, true)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("the cancellation did not wake the parked producer")
	}

	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(2), st.Drops, "both give-ups are drops")
}

func TestConsumerParkDeadline(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<10))
	p, err := r.Producer()
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(ipc.WithWait(ipc.Park))
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Read(ctx, func([]byte) {}), ipc.ErrTimeout)
}

// TestPeerDeadWhileParked: a parked producer learns that the consumer
// process died, and a parked consumer that the producer process died.
func TestPeerDeadWhileParked(t *testing.T) {
	t.Run("consumer dies", func(t *testing.T) {
		r := newRing(t, ipc.WithCapacity(1<<10), ipc.WithMaxMessage(120))
		child := startIdleChild(t, r.Path(), "consumer")
		p, err := r.Producer(ipc.WithPolicy(ipc.Park), ipc.WithPeerTimeout(100*time.Millisecond))
		require.NoError(t, err)
		defer p.Close()
		msg := make([]byte, 120)
		for p.TryWrite(msg) == nil {
		}
		done := make(chan error)
		go func() { done <- p.Write(msg) }()
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
		r := newRing(t, ipc.WithCapacity(1<<10))
		child := startIdleChild(t, r.Path(), "producer")
		c, err := r.Consumer(ipc.WithWait(ipc.Park), ipc.WithConsumerPeerTimeout(100*time.Millisecond))
		require.NoError(t, err)
		defer c.Close()
		done := make(chan error)
		go func() { done <- c.Read(context.Background(), func([]byte) {}) }()
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
		_, err = r.Consumer()
	case "idle-producer":
		_, err = r.Producer()
	}
	if err != nil {
		return err
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
	return nil
}

// pingPong sends count messages one at a time to a consumer that parks
// (Park policy only: no spinning to hide a missed wake-up). Each message
// waits for the previous one to be received, then for a random pause, so
// that it lands at every point of the consumer's way to sleep and no later
// message can rescue a missed wake-up. It returns the consumer's parks and
// the missed wake-ups seen (ipc.LateWakes); it stops at the first missed
// wake-up (each costs a whole park slice: a broken protocol would
// otherwise run for count slices). A run that is stuck fails with a
// message well before the test binary's timeout: a message not received
// within a minute, or the run not done 30 s before the test's deadline.
func pingPong(t *testing.T, count int) (parks, late uint64) {
	r := newRing(t, ipc.WithCapacity(1<<12))
	p, err := r.Producer(ipc.WithPolicy(ipc.Park))
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(ipc.WithWait(ipc.Park), ipc.WithConsumerPeerTimeout(time.Minute))
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
			if err := p.Write([]byte(fmt.Sprint(i))); err != nil {
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
		n, err := c.ReadBatch(ctx, 16, func([]byte) {})
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

// TestWakeupsCoalesced: under sustained load, and with a consumer that
// sleeps between bursts, producers make far fewer wake system calls than
// they write messages.
func TestWakeupsCoalesced(t *testing.T) {
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.WithCapacity(1<<16))
	require.NoError(t, err)
	defer r.Close()
	const bursts, perBurst = 50, 4000
	c, err := r.Consumer() // Hybrid: spins, yields, then parks
	require.NoError(t, err)
	defer c.Close()
	done := make(chan error)
	go func() {
		p, err := r.Producer()
		if err != nil {
			done <- err
			return
		}
		defer p.Close()
		msg := make([]byte, 64)
		for b := 0; b < bursts; b++ {
			for i := 0; i < perBurst; i++ {
				if err := p.Write(msg); err != nil {
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
		n, err := c.ReadBatch(ctx, 256, func([]byte) {})
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
	r := newRing(t, ipc.WithCapacity(1<<10), ipc.WithMaxMessage(120))
	c, err := r.Consumer()
	require.NoError(t, err)
	defer c.Close()
	p, err := r.Producer(ipc.WithPolicy(ipc.Park))
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 120)
	for p.TryWrite(msg) == nil {
	}
	done := make(chan error)
	go func() { done <- p.Write(msg) }() // parks: the consumer does not read
	time.Sleep(30 * time.Millisecond)
	other, err := ipc.Open(r.Path()) // as ringctl policy does, from anywhere
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, other.SetPolicy(ipc.Drop, 0))
	select {
	case err := <-done:
		require.ErrorIs(t, err, ipc.ErrFull, "the parked producer now drops")
	case <-time.After(2 * time.Minute): // only a stuck test meets it
		t.Fatal("the producer did not follow the override")
	}
	require.ErrorIs(t, p.Write(msg), ipc.ErrFull)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, ipc.Drop, ipc.Policy(st.ProducerMode))
	require.NoError(t, other.SetPolicy(0, 0))
	require.ErrorIs(t, other.SetPolicy(ipc.Policy(99), 0), ipc.ErrInvalidPolicy)
	require.ErrorIs(t, other.SetPolicy(0, ipc.Drop), ipc.ErrInvalidPolicy, "a consumer cannot drop")
}

// TestLongPark: a consumer parked for longer than the peer timeout (its
// producer is attached, so that is fine) is woken by the producer's write:
// the wake-up counter moves.
func TestLongPark(t *testing.T) {
	if testing.Short() {
		t.Skip("parks for over a second")
	}
	r := newRing(t, ipc.WithCapacity(1<<12))
	p, err := r.Producer(ipc.WithPolicy(ipc.Park))
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(ipc.WithWait(ipc.Park))
	require.NoError(t, err)
	defer c.Close()
	got := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		got <- c.Read(ctx, func([]byte) {})
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
	require.NoError(t, p.Write([]byte("wake up")))
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
