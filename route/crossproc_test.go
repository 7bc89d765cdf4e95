package route_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/route"
	"github.com/stretchr/testify/require"
)

// The test binary re-executes itself as a worker process when childEnv is
// set (os/exec's helperCommand pattern).
const childEnv = "SHMRING_ROUTE_TEST_CHILD"

// workerBatch is the most messages a worker reads per Read: what a worker
// killed mid-batch may get again when it restarts.
const workerBatch = 16

// runChild runs a child role: "worker" consumes SHMRING_ROUTE_RING and
// writes each message's id (its first 8 bytes) as a decimal line to stdout,
// unbuffered, from the Read callback: a line written is a message handled.
// It runs until killed.
func runChild(role string) error {
	if role != "worker" {
		return fmt.Errorf("unknown role %q", role)
	}
	r, err := ipc.Open(os.Getenv("SHMRING_ROUTE_RING"))
	if err != nil {
		return err
	}
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{PeerTimeout: time.Hour}})
	if err != nil {
		return err
	}
	line := make([]byte, 0, 24)
	for {
		_, err := c.Read(context.Background(), workerBatch, func(m []byte) {
			line = strconv.AppendUint(line[:0], binary.LittleEndian.Uint64(m), 10)
			line = append(line, '\n')
			if _, err := os.Stdout.Write(line); err != nil {
				panic(err)
			}
		})
		if err != nil && !errors.Is(err, ipc.ErrPeerDead) {
			return err
		}
	}
}

// fleet is a set of rings, each consumed by a worker process that may be
// killed and restarted, and what the workers reported handling.
type fleet struct {
	t     *testing.T
	rings []*ipc.Ring
	mu    sync.Mutex
	cmds  []*exec.Cmd
	eof   []chan struct{} // closed when the incarnation's stdout ends
	ids   [][]uint64      // per ring, every incarnation's lines in order
	kills []int
	seen  []bool // by id: reported by some worker
	nseen int
}

func newFleet(t *testing.T, n int, cfg ipc.Config) *fleet {
	f := &fleet{t: t, cmds: make([]*exec.Cmd, n), eof: make([]chan struct{}, n), ids: make([][]uint64, n),
		kills: make([]int, n)}
	for i := 0; i < n; i++ {
		f.rings = append(f.rings, newRing(t, cfg))
	}
	t.Cleanup(func() {
		for i := range f.cmds {
			f.stop(i)
		}
	})
	for i := 0; i < n; i++ {
		f.start(i)
	}
	for _, r := range f.rings {
		waitFor(t, "a worker attached", func() bool { st, err := r.Stats(); return err == nil && st.ConsumerAttached })
	}
	return f
}

// start starts ring i's worker.
func (f *fleet) start(i int) {
	cmd := exec.CommandContext(testutil.ChildDeadline(f.t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=worker", "SHMRING_ROUTE_RING="+f.rings[i].Path())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(f.t, err)
	require.NoError(f.t, cmd.Start())
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			id, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				panic(fmt.Sprintf("worker %d wrote %q", i, sc.Text()))
			}
			f.mu.Lock()
			f.ids[i] = append(f.ids[i], id)
			for uint64(len(f.seen)) <= id {
				f.seen = append(f.seen, false)
			}
			if !f.seen[id] {
				f.seen[id] = true
				f.nseen++
			}
			f.mu.Unlock()
		}
	}()
	f.cmds[i], f.eof[i] = cmd, eof
}

// stop kills ring i's worker (SIGKILL) and waits until it is gone and
// everything it wrote has been read.
func (f *fleet) stop(i int) {
	if f.cmds[i] == nil {
		return
	}
	_ = f.cmds[i].Process.Kill()
	<-f.eof[i]
	_ = f.cmds[i].Wait()
	f.cmds[i] = nil
}

// kill is stop, counted as a kill of a working worker.
func (f *fleet) kill(i int) {
	f.stop(i)
	f.mu.Lock()
	f.kills[i]++
	f.mu.Unlock()
}

// delivered returns how many distinct ids the workers have reported.
func (f *fleet) delivered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nseen
}

// check asserts exactly-once delivery of ids 0 to n-1: every id handled by
// exactly one ring's workers. An id a ring's worker reports again after a
// kill (ipc gives an unreleased message to the next consumer: a worker
// killed between handling a message and the release of its batch) is
// recognised by its id, as a consumer checking ids would: per ring ids
// arrive in increasing order (one router sends them in order), so a
// repeat is at or below the highest so far, and must be one seen on that
// ring; there are at most workerBatch of them per kill.
func (f *fleet) check(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	owner := make([]int8, n) // by id: 1 + the ring whose worker handled it, 0: none
	for i, ids := range f.ids {
		var high uint64
		again, handled := 0, 0
		for k, id := range ids {
			require.Less(f.t, id, n, "ring %d: id %d was never sent", i, id)
			if k > 0 && id <= high {
				require.Equal(f.t, int8(i+1), owner[id], "ring %d: id %d arrived after %d and was never handled there before: out of order", i, id, high)
				again++
				continue
			}
			high = id
			require.Zero(f.t, owner[id], "id %d handled on ring %d and on ring %d", id, owner[id]-1, i)
			owner[id] = int8(i + 1)
			handled++
		}
		require.LessOrEqual(f.t, again, workerBatch*f.kills[i], "ring %d: %d repeats after %d kills", i, again, f.kills[i])
		f.t.Logf("ring %d: %d messages, %d kills, %d handled again after a kill (dropped by id)", i, handled, f.kills[i], again)
	}
	for id, o := range owner {
		require.NotZero(f.t, o, "id %d was never handled (of %d)", id, n)
	}
}

func idMsg(buf []byte, id uint64) []byte {
	binary.LittleEndian.PutUint64(buf, id)
	return buf
}

// A routed worker SIGKILLed: its ring leaves the rotation (the time it
// takes is logged; the issue asks for 1 s, asserted only against a
// deadline that fails a stuck test) and returns when the worker restarts;
// every message is handled exactly once.
func TestWorkerKilled(t *testing.T) {
	f := newFleet(t, 4, ipc.Config{Capacity: 64 << 10})
	rt := newRouter(t, f.rings, &route.Config{Sample: time.Millisecond})
	ctx := context.Background()
	buf := make([]byte, 32)
	var id uint64
	send := func(n int) {
		for k := 0; k < n; k++ {
			require.NoError(t, rt.Send(ctx, idMsg(buf, id)))
			id++
		}
	}
	send(3000)
	killed := time.Now()
	f.kill(2)
	waitFor(t, "ring 2 out of the rotation", func() bool { return rt.Stats().Rings[2].Health == route.Dead })
	t.Logf("ring 2 left the rotation %v after its worker was killed (the issue asks within 1 s)", time.Since(killed).Round(time.Microsecond))
	before := rt.Stats().Rings[2].Routed
	send(3000)
	require.Equal(t, before, rt.Stats().Rings[2].Routed, "nothing routed to the dead worker's ring")
	require.NotZero(t, rt.Stats().Rings[2].Skipped)

	restarted := time.Now()
	f.start(2)
	waitFor(t, "ring 2 back", func() bool { return rt.Stats().Rings[2].Health == route.Healthy })
	t.Logf("ring 2 rejoined %v after its worker was restarted", time.Since(restarted).Round(time.Microsecond))
	send(3000)
	require.Greater(t, rt.Stats().Rings[2].Routed, before, "the ring is routed to again")
	waitFor(t, "every message handled", func() bool { return f.delivered() == int(id) })
	f.check(id)
}

// Four workers killed and restarted at random while one router sends:
// every message is handled exactly once. SHMRING_ROUTE_CHAOS sets how long
// the killing goes on (a Go duration, 30s for the run); a few
// seconds by default.
func TestWorkersKilledAtRandom(t *testing.T) {
	d := 3 * time.Second
	if s := os.Getenv("SHMRING_ROUTE_CHAOS"); s != "" {
		var err error
		d, err = time.ParseDuration(s)
		require.NoError(t, err)
	}
	f := newFleet(t, 4, ipc.Config{Capacity: 16 << 10})
	rt := newRouter(t, f.rings, &route.Config{Sample: time.Millisecond})

	var stop atomic.Bool
	var sent uint64
	sendDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 32)
		for !stop.Load() {
			if err := rt.Send(context.Background(), idMsg(buf, sent)); err != nil {
				sendDone <- err
				return
			}
			sent++
			if sent%100 == 0 {
				time.Sleep(time.Millisecond) // pacing (at most 100,000 a second): bounds the ids kept
			}
		}
		sendDone <- nil
	}()
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i := range f.rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			for time.Now().Before(end) {
				time.Sleep(time.Duration(20+rng.IntN(200)) * time.Millisecond) // pacing, not synchronisation
				f.kill(i)
				time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
				f.start(i)
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	require.NoError(t, <-sendDone)
	waitFor(t, "every message handled", func() bool { return f.delivered() == int(sent) })
	s := rt.Stats()
	for i, r := range s.Rings {
		t.Logf("ring %d: routed %d, skipped %d, left the rotation %d times, returned %d", i, r.Routed, r.Skipped, r.Left, r.Returned)
	}
	t.Logf("%d messages over %v of kills", sent, d)
	f.check(sent)
}
