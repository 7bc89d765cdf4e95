package ipc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// TestLayeredPressure: pressure rises at the high level, a throttled
// producer slows down there, and it falls only at the low level.
func TestLayeredPressure(t *testing.T) {
	ctx := context.Background()
	r := newRing(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 120, HighWater: 2048, LowWater: 512})
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop, Throttle: 2 * time.Millisecond})
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	msg := make([]byte, 120) // 128-byte records
	for i := 0; i < 15; i++ {
		require.NoError(t, p.Write(ctx, msg))
	}
	require.Zero(t, pressure(t, p))
	start := time.Now()
	require.NoError(t, p.Write(ctx, msg)) // depth 2048: the soft level
	require.Equal(t, ipc.Pressure{Depth: true}, pressure(t, p))
	require.GreaterOrEqual(t, time.Since(start), 2*time.Millisecond, "throttled at the soft level")
	// Drain to 1024 (above low): still raised; then to empty: lowered.
	_, err = c.TryRead(8, func([]byte) {})
	require.NoError(t, err)
	c.Close()
	c, err = r.Consumer(nil)
	require.NoError(t, err)
	require.Equal(t, ipc.Pressure{Depth: true}, pressure(t, p), "hysteresis: holds above the low level")
	_, err = c.TryRead(100, func([]byte) {})
	require.NoError(t, err)
	_, err = c.TryRead(100, func([]byte) {})
	require.NoError(t, err)
	require.Zero(t, pressure(t, p))
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(2), st.PressureChanges)
	require.NoError(t, ops.SetPressureLevels(r, 0, 0))
	require.Error(t, ops.SetPressureLevels(r, 100, 200))
}

// TestOverflowRoute: a full ring hands messages to the route, counted.
func TestOverflowRoute(t *testing.T) {
	ctx := context.Background()
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	spill := newRing(t, ipc.Config{Capacity: 1 << 16})
	sp, err := spill.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	require.NoError(t, err)
	defer sp.Close()
	var routed [][]byte
	// Full is ignored when a route is set: the messages are routed, not
	// dropped.
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop, Overflow: func(m []byte) error {
		routed = append(routed, bytes.Clone(m))
		return sp.Write(ctx, m) // another ring
	}})
	require.NoError(t, err)
	defer p.Close()
	// Overflow is no longer a policy that can be chosen without its route
	// (the old check here); what a producer may not be given is a full-ring
	// action that does not exist.
	_, err = newRing(t, ipc.Config{}).Producer(&ipc.ProducerConfig{Full: ipc.Full(3)})
	require.ErrorIs(t, err, fs.ErrInvalid)
	for i := 0; i < 10; i++ {
		require.NoError(t, p.Write(ctx, []byte(fmt.Sprintf("%03d", i)+strings.Repeat(".", 117))))
	}
	require.Len(t, routed, 2)
	require.Equal(t, "008", string(routed[0][:3]))
	n, err := p.WriteBatch(ctx, [][]byte{[]byte("a"), []byte("b")})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(4), st.Overflowed)
	require.Zero(t, st.Drops)
	ss, err := spill.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(4), ss.MsgsIn)
	_, err = p.Claim(ctx, 100)
	require.ErrorIs(t, err, ipc.ErrFull, "a claim has no message to route")
}

// TestWindowAndWaitHook: a parked producer is held by a narrow window and
// released when the consumer widens it; a wait hook can give up or fail.
func TestWindowAndWaitHook(t *testing.T) {
	ctx := context.Background()
	r := newRing(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 120})
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, ops.SetWindow(r, 512))
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)
	msg := make([]byte, 120)
	for i := 0; i < 4; i++ {
		require.NoError(t, p.Write(ctx, msg))
	}
	done := make(chan error)
	go func() { done <- p.Write(ctx, msg) }()
	waitUntil(t, func() bool { st, _ := r.Stats(); return st.ProducerParks > 0 }, true) // held by the window
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(512), st.Depth, "the window holds the producer")
	require.NoError(t, ops.SetWindow(r, 0))
	require.NoError(t, <-done)
	require.NoError(t, p.Close())

	var calls int
	errFail := errors.New("the hook fails the wait")
	p, err = r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park, Hook: func(wi ipc.WaitInfo) error {
		calls++
		if wi.Depth == 0 {
			return errFail // end the wait, the message not counted
		}
		if wi.Waited > 20*time.Millisecond {
			return ipc.ErrFull // give up: the message is dropped
		}
		return nil // keep waiting
	}}})
	require.NoError(t, err)
	defer p.Close()
	for p.TryWrite(msg) == nil {
	}
	require.ErrorIs(t, p.Write(ctx, msg), ipc.ErrFull, "the hook gave up")
	require.GreaterOrEqual(t, calls, 1)
	st, err = r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Drops)
}

// memChild writes as fast as it can for SHMRING_T_SECONDS into a ring
// whose consumer never reads, under the policy named in SHMRING_T_POLICY,
// and prints its heap and RSS growth after a one-second warm-up.
func memChild() error {
	r, err := ipc.Open(os.Getenv("SHMRING_T_PATH"))
	if err != nil {
		return err
	}
	defer r.Close()
	// block: Park, each write with a 2 ms context deadline. (Block had a
	// 1 ms timeout; a context deadline costs more per give-up than Block's
	// own timer did: ipc's context.AfterFunc starts a goroutine each time
	// the deadline passes during a park, and at 1000 give-ups a second
	// that churn alone grows anonymous RSS by up to 1.3 MiB after the
	// warm-up, over the bound below. It levels off (+0.55 MiB over a
	// 40 s run): not a leak.)
	var cfg ipc.ProducerConfig
	spill := 0
	block := false
	switch pol := os.Getenv("SHMRING_T_POLICY"); pol {
	case "overflow":
		cfg.Overflow = func(m []byte) error { spill += len(m); return nil }
	case "drop":
		cfg.Full = ipc.Drop
	case "block":
		cfg.Wait.Strategy, block = ipc.Park, true
	default:
		return fmt.Errorf("memChild: unknown policy %q (want drop, block or overflow)", pol)
	}
	p, err := r.Producer(&cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	secs, _ := strconv.Atoi(os.Getenv("SHMRING_T_SECONDS"))
	msg := make([]byte, 100)
	// Retained memory, measured after a collection that also returns free
	// pages to the OS, at the end of the warm-up and at the end: what a
	// bounded producer must not grow. (Garbage between collections is the
	// collector's business, not a leak.)
	retained := func() (heap, rss uint64) {
		debug.FreeOSMemory()
		return heapBytes(), rssBytes()
	}
	var baseHeap, baseRSS uint64
	start := time.Now()
	for time.Since(start) < time.Duration(secs)*time.Second {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if block {
			ctx, cancel = context.WithTimeout(ctx, 2*time.Millisecond)
		}
		err := p.Write(ctx, msg)
		cancel()
		if err != nil && !errors.Is(err, ipc.ErrFull) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if baseHeap == 0 && time.Since(start) > warmup(secs) {
			baseHeap, baseRSS = retained()
		}
	}
	endHeap, endRSS := retained()
	fmt.Println(int64(endHeap)-int64(baseHeap), int64(endRSS)-int64(baseRSS), endHeap)
	return nil
}

// warmup is how long a memory-measuring child runs before its baseline: a
// fifth of the run, at least one second.
func warmup(secs int) time.Duration { return max(time.Second, time.Duration(secs)*time.Second/5) }

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// rssBytes is the process's anonymous resident memory (RssAnon): its own
// memory, without the shared segment's pages or the mapped binary.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestBoundedMemory: producer processes send for 10 seconds into rings
// whose consumer is stalled, under Drop, Park with a 2 ms context deadline
// per write (what Block was), and an overflow route; their heap and
// anonymous RSS stay flat (growth under 1 MiB after a warm-up; RSS is not
// asserted under -race, whose shadow memory grows with activity), and each
// ring's depth never exceeds its capacity or window.
func TestBoundedMemory(t *testing.T) {
	secs := 10
	if testing.Short() {
		secs = 2
	}
	type run struct {
		policy string
		r      *ipc.Ring
		out    bytes.Buffer
		cmd    *exec.Cmd
	}
	var runs []*run
	for _, pol := range []string{"drop", "block", "overflow"} {
		r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1 << 16})
		require.NoError(t, err)
		defer r.Close()
		c, err := r.Consumer(nil) // attached, never reads
		require.NoError(t, err)
		defer c.Close()
		if pol == "block" {
			require.NoError(t, ops.SetWindow(r, 1<<14))
		}
		x := &run{policy: pol, r: r}
		x.cmd = exec.Command(os.Args[0], "-test.run=^$")
		x.cmd.Env = append(os.Environ(), childEnv+"=mem", "SHMRING_T_PATH="+r.Path(), "SHMRING_T_POLICY="+pol, "SHMRING_T_SECONDS="+strconv.Itoa(secs))
		x.cmd.Stdout, x.cmd.Stderr = &x.out, os.Stderr
		require.NoError(t, x.cmd.Start())
		runs = append(runs, x)
	}
	var wg sync.WaitGroup
	var maxDepth [3]uint64
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // watch the depths while they run
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			for i, x := range runs {
				if st, err := x.r.Stats(); err == nil {
					maxDepth[i] = max(maxDepth[i], st.Depth)
				}
			}
		}
	}()
	for _, x := range runs {
		require.NoError(t, x.cmd.Wait(), x.policy)
	}
	close(stop)
	wg.Wait()
	for i, x := range runs {
		var heapGrowth, rssGrowth, endHeap int64
		_, err := fmt.Sscan(x.out.String(), &heapGrowth, &rssGrowth, &endHeap)
		require.NoError(t, err, "%s said %q", x.policy, x.out.String())
		t.Logf("%s: retained heap %+d B (%d B live), anonymous RSS %+d B between the end of the warm-up and the end; max depth %d", x.policy, heapGrowth, endHeap, rssGrowth, maxDepth[i])
		require.Less(t, heapGrowth, int64(1<<20), x.policy)
		if !raceEnabled { // the race detector's own shadow memory grows with activity
			require.Less(t, rssGrowth, int64(1<<20), x.policy)
		}
		st, err := x.r.Stats()
		require.NoError(t, err)
		limit := st.Capacity
		if st.Window != 0 {
			limit = st.Window
		}
		require.LessOrEqual(t, maxDepth[i], limit, x.policy)
		require.NotZero(t, st.Drops+st.Overflowed, x.policy)
	}
}

// TestAdaptiveLevel: a consumer that slows from fast to 10x slower raises
// pressure (by queueing delay) long before the ring fills; when it speeds
// up again, pressure falls.
func TestAdaptiveLevel(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 20, MaxMessage: 64, TargetDelay: 2 * time.Millisecond, DelayInterval: 20 * time.Millisecond})
	rst, err := r.Stats()
	require.NoError(t, err)
	capacity := rst.Capacity
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()

	var slow atomic.Bool
	var reads atomic.Int64 // messages read while slow
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a steady producer: one message every 50 µs
		defer close(done)
		next := time.Now()
		var written int64 // while slow
		for {
			select {
			case <-stop:
				return
			default:
			}
			if time.Now().Before(next) {
				continue
			}
			if !slow.Load() {
				written = 0
			} else if written >= 10*reads.Load()+10 {
				// 10 messages per message read, at most: the consumer is
				// 10x slower in messages, not only in time, so a reader
				// descheduled on a loaded machine does not let the
				// producer fill the ring meanwhile (its records' delays
				// only grow).
				continue
			}
			// From now, not from the last deadline: a producer that was
			// descheduled does not catch up with a burst.
			next = time.Now().Add(50 * time.Microsecond)
			if p.Write(context.Background(), make([]byte, 64)) == nil && slow.Load() {
				written++
			}
		}
	}()
	read := func(d time.Duration) {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			n, err := c.TryRead(1, func([]byte) {})
			require.NoError(t, err)
			if n > 0 && slow.Load() {
				reads.Add(1)
				time.Sleep(500 * time.Microsecond) // 10x the producer's interval
			}
		}
	}
	read(300 * time.Millisecond) // fast: keeps up
	// A consumer that keeps up makes no pressure: the first record it
	// reads under the target lowers any. On a loaded machine the reading
	// goroutine may have just been descheduled for longer than the target
	// and interval (its last records late), so it is given more reading,
	// not a wall-clock verdict; a bound only a stuck test meets.
	for start := time.Now(); pressure(t, p) != (ipc.Pressure{}); {
		require.Less(t, time.Since(start), 2*time.Minute, "a consumer that keeps up makes no pressure")
		read(10 * time.Millisecond)
	}
	slow.Store(true)
	var raisedAt uint64
	for start := time.Now(); time.Since(start) < 2*time.Minute && raisedAt == 0; {
		read(time.Millisecond)
		if pressure(t, p).Delay {
			st, err := r.Stats()
			require.NoError(t, err)
			raisedAt = st.Depth
		}
	}
	require.NotZero(t, raisedAt, "delay above target raised pressure")
	require.Less(t, raisedAt, capacity/4, "long before the ring was full")
	slow.Store(false)
	reads.Store(0)
	for start := time.Now(); time.Since(start) < 2*time.Minute && pressure(t, p) != (ipc.Pressure{}); {
		read(10 * time.Millisecond)
	}
	require.Zero(t, pressure(t, p), "a consumer that catches up lowers it")
	close(stop)
	<-done
	st, err := r.Stats()
	require.NoError(t, err)
	require.GreaterOrEqual(t, st.PressureChanges, uint64(2))
	require.NotZero(t, st.DelayCount)
	t.Logf("pressure rose at depth %d of %d; %d delays measured", raisedAt, capacity, st.DelayCount)
}

// TestDropOldest: newest wins; the consumer gets the latest messages whole.
func TestDropOldest(t *testing.T) {
	ctx := context.Background()
	plain := newRing(t, ipc.Config{Capacity: 1 << 10})
	_, err := plain.Producer(&ipc.ProducerConfig{Full: ipc.DropOldest})
	require.Error(t, err, "needs a ring created for it")

	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 100, DropOldest: true})
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.DropOldest})
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	for i := 0; i < 100; i++ {
		require.NoError(t, p.Write(ctx, []byte(fmt.Sprintf("%03d%s", i, strings.Repeat(".", 97)))))
	}
	n, err := p.WriteBatch(ctx, [][]byte{[]byte("100"), []byte("101")})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	var got []string
	_, err = c.TryRead(100, func(m []byte) { got = append(got, string(m[:3])) })
	require.NoError(t, err)
	require.Equal(t, "101", got[len(got)-1], "the newest survived")
	require.Less(t, len(got), 20, "the oldest were reclaimed")
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(102), st.Drops+uint64(len(got)), "every message was either delivered or reclaimed")
}

// pressure returns p's pressure, failing the test on an error.
func pressure(t *testing.T, p *ipc.Producer) ipc.Pressure {
	t.Helper()
	w, err := p.Pressure()
	require.NoError(t, err)
	return w
}
