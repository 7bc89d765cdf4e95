package ring_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// formatRing formats a region for cfg and attaches to it.
func formatRing(t testing.TB, cfg ring.Config) ([]byte, *ring.Ring) {
	t.Helper()
	size, err := ring.Size(cfg)
	require.NoError(t, err)
	region := make([]byte, size)
	require.NoError(t, ring.Format(region, cfg))
	return region, attach(t, region)
}

func newMPSC(t testing.TB, capacity, maxMsg uint64, slots int) (*ring.Ring, *ring.Consumer) {
	t.Helper()
	_, r := formatRing(t, ring.Config{Kind: ring.MPSC, Capacity: capacity, MaxMessage: maxMsg, Slots: slots})
	require.Equal(t, slots, r.Slots())
	c, err := r.NewConsumer()
	require.NoError(t, err)
	return r, c
}

func slotProducer(t testing.TB, r *ring.Ring, i int) *ring.Producer {
	t.Helper()
	p, err := r.NewSlotProducer(i)
	require.NoError(t, err)
	return p
}

func drain(t *testing.T, c *ring.Consumer) []string {
	t.Helper()
	var got []string
	for {
		n, err := c.ReadBatch(100, func(m []byte) { got = append(got, string(m)) })
		require.NoError(t, err)
		if n == 0 {
			return got
		}
	}
}

func TestMPSCBasics(t *testing.T) {
	r, c := newMPSC(t, 1<<10, 128, 3)
	_, err := r.NewProducer()
	require.Error(t, err, "an mpsc ring has slot producers only")
	_, err = r.NewSlotProducer(3)
	require.Error(t, err)
	p0, p1 := slotProducer(t, r, 0), slotProducer(t, r, 1)
	require.NoError(t, p0.TryWrite([]byte("a0")))
	require.NoError(t, p1.TryWrite([]byte("b0")))
	b, err := p0.Claim(100)
	require.NoError(t, err)
	n := copy(b, "a1-short")
	require.NoError(t, p1.TryWrite([]byte("b1")), "a later reservation while a claim is open")
	require.Equal(t, []string{"a0", "b0"}, drain(t, c), "the consumer stops at the open claim")
	require.True(t, c.Blocked())
	require.NoError(t, p0.CommitN(n))
	require.False(t, c.Blocked())
	_, err = p0.Claim(10)
	require.NoError(t, err)
	p0.Abort()
	require.NoError(t, p1.TryWrite([]byte("b2")))
	require.Equal(t, []string{"a1-short", "b1", "b2"}, drain(t, c))
	st := r.Stats()
	require.Equal(t, uint64(5), st.MsgsIn)
	require.Equal(t, uint64(5), st.MsgsOut)
	require.Equal(t, uint64(2), r.Slot(0).MsgsIn)
	require.Equal(t, uint64(3), r.Slot(1).MsgsIn)
	require.Zero(t, st.Lost)

	// Fill to full, then wrap through every size.
	msg := make([]byte, 128)
	for p0.TryWrite(msg) == nil {
	}
	require.ErrorIs(t, p1.TryWrite(msg), ring.ErrFull)
	drain(t, c)
	buf := make([]byte, 128)
	for k := 0; k < 4; k++ {
		for size := 0; size <= 128; size++ {
			p := p0
			if size%2 == 1 {
				p = p1
			}
			want := fill(buf[:size], uint64(size))
			require.NoError(t, p.TryWrite(want))
			require.Equal(t, []string{string(want)}, drain(t, c))
		}
	}
}

// TestMPSCDeadProducer stops the real write code after each step of its
// protocol (a test hook), as a producer killed there stops, and checks that the consumer skips the reservation
// only when the owner is dead, counts it lost, and delivers everything
// around it.
func TestMPSCDeadProducer(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		for step := ring.StepIntent; step <= ring.StepCounted; step++ {
			t.Run(fmt.Sprintf("wrap=%v/step=%d", wrap, step), func(t *testing.T) {
				r, c := newMPSC(t, 1<<10, 128, 3)
				dead, live := slotProducer(t, r, 0), slotProducer(t, r, 1)
				if wrap { // bring the frontier to 992: "before" leaves a 16-byte tail
					for i := 0; i < 8; i++ {
						require.NoError(t, live.TryWrite(make([]byte, 100)))
					}
					require.NoError(t, live.TryWrite(make([]byte, 88)))
					require.Len(t, drain(t, c), 9)
				}
				require.NoError(t, live.TryWrite([]byte("before")))
				ring.ReserveDying(t, dead, []byte("doomed message"), step)
				require.NoError(t, live.TryWrite([]byte("after")))

				got := drain(t, c)
				if step == ring.StepIntent {
					// No space was taken: nothing blocks.
					require.Equal(t, []string{"before", "after"}, got)
					require.Zero(t, r.Stats().Lost)
					return
				}
				require.Equal(t, []string{"before"}, got)
				require.Equal(t, []string{"after"}, recoverDeadSlot0(t, c))
				st := r.Stats()
				require.Equal(t, uint64(1), st.Lost, "one record lost, even when skipped in two pieces")
				require.Equal(t, uint64(1), r.Slot(0).Lost)
				require.Equal(t, st.ProducerPos, st.ConsumerPos)

				// The ring is whole afterwards: every size still round-trips.
				for size := 0; size <= 128; size += 7 {
					require.NoError(t, live.TryWrite(fill(make([]byte, size), 1)))
					require.Equal(t, []string{string(fill(make([]byte, size), 1))}, drain(t, c))
				}
			})
		}
	}
}

// recoverDeadSlot0 takes a consumer blocked at slot 0's reservation:
// Recover must not skip it while slot 0 lives; then slot 0 is dead, and it
// drains the ring, recovering wherever it blocks, and returns what it read.
func recoverDeadSlot0(t *testing.T, c *ring.Consumer) []string {
	t.Helper()
	dead := false
	alive := func(slot int) bool { return slot != 0 || !dead }
	require.True(t, c.Blocked())
	ok, err := recoverWith(t, c, alive)
	require.NoError(t, err)
	require.False(t, ok, "a live owner is never skipped")
	dead = true
	var got []string
	for {
		got = append(got, drain(t, c)...)
		if !c.Blocked() {
			return got
		}
		ok, err = recoverWith(t, c, alive)
		require.NoError(t, err)
		require.True(t, ok)
	}
}

// TestMPSCReclaimedSlot: a producer dies with a reservation, and a new
// producer takes its slot (and so its liveness) before the consumer gets
// there. The dead reservation is no longer covered by the slot's intent, so
// it is skipped although the slot is alive again.
func TestMPSCReclaimedSlot(t *testing.T) {
	for _, step := range []int{ring.StepCAS, ring.StepPending, ring.StepPayload, ring.StepCounted} {
		r, c := newMPSC(t, 1<<12, 128, 2)
		old := slotProducer(t, r, 0)
		ring.ReserveDying(t, old, []byte("lost in the crash"), step)
		reborn := slotProducer(t, r, 0)
		require.NoError(t, reborn.TryWrite([]byte("reborn")))
		require.Empty(t, drain(t, c))
		ok, err := recoverWith(t, c, func(int) bool { return true })
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, []string{"reborn"}, drain(t, c))
		require.Equal(t, uint64(1), r.Stats().Lost)
	}
	// The restarted producer has written nothing yet (say the ring is full
	// behind the dead record): its predecessor's intent, left in the slot,
	// must not shield the dead record as if the live newcomer owned it.
	for _, step := range []int{ring.StepCAS, ring.StepPending, ring.StepPayload, ring.StepCounted} {
		r, c := newMPSC(t, 1<<12, 128, 2)
		ring.ReserveDying(t, slotProducer(t, r, 0), []byte("lost in the crash"), step)
		require.NoError(t, slotProducer(t, r, 1).TryWrite([]byte("behind it")))
		_ = slotProducer(t, r, 0) // reborn, idle
		ok, err := recoverWith(t, c, func(int) bool { return true })
		require.NoError(t, err)
		require.True(t, ok, "step %d: the dead record is skipped", step)
		require.Equal(t, []string{"behind it"}, drain(t, c))
		require.Equal(t, uint64(1), r.Stats().Lost)
	}
}

// TestMPSCStaleLoserIntent: a producer that lost the race for a position
// died before it could retry; its stale intent must not make the consumer
// skip the winner's live reservation.
func TestMPSCStaleLoserIntent(t *testing.T) {
	r, c := newMPSC(t, 1<<12, 128, 3)
	loser, winner, other := slotProducer(t, r, 0), slotProducer(t, r, 1), slotProducer(t, r, 2)
	ring.ReserveDying(t, loser, make([]byte, 100), ring.StepIntent) // intent at P, never reserved
	ring.ReserveDying(t, winner, []byte("slow"), ring.StepCAS)      // wins P, alive but slow
	require.NoError(t, other.TryWrite([]byte("later")))
	alive := func(slot int) bool { return slot != 0 }
	ok, err := recoverWith(t, c, alive)
	require.NoError(t, err)
	require.False(t, ok, "the winner is alive: wait")
	require.Empty(t, drain(t, c))
	require.Zero(t, r.Stats().Lost)
}

// TestMPSCConsumerDiesWhileZeroing: the zeroing mark lets a new consumer
// finish the release of a batch the previous one delivered, instead of
// delivering it again or counting it lost.
func TestMPSCConsumerDiesWhileZeroing(t *testing.T) {
	r, c := newMPSC(t, 1<<12, 128, 1)
	p := slotProducer(t, r, 0)
	for i := 0; i < 5; i++ {
		require.NoError(t, p.TryWrite([]byte(fmt.Sprint("m", i))))
	}
	require.Len(t, drain(t, c), 5)
	// Simulate: the mark says the batch ends at the producer position, but
	// the consumer position was never stored.
	region := ring.RegionOf(r)
	st := r.Stats()
	ring.SetConsumerPos(region, 0)
	require.NotZero(t, st.ConsumerPos)
	c2, err := r.NewConsumer()
	require.NoError(t, err)
	require.Empty(t, drain(t, c2))
	require.Equal(t, st.ConsumerPos, r.Stats().ConsumerPos)
	require.Zero(t, r.Stats().Lost)
}

// TestMPSCStress: many producers, random sizes, claims and aborts, random
// yields; every message arrives once, each producer's in order, byte-exact.
func TestMPSCStress(t *testing.T) {
	const producers = 6
	per := 60_000
	if raceEnabled || testing.Short() {
		per = 8_000
	}
	r, c := newMPSC(t, 1<<13, 512, producers)
	var wg sync.WaitGroup
	for k := 0; k < producers; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			p := slotProducer(t, r, k)
			rng := rand.New(rand.NewPCG(uint64(k), 99))
			buf := make([]byte, 512)
			for seq := 0; seq < per; {
				if rng.IntN(4) == 1 { // a batch: one reservation per run
					msgs := make([][]byte, 1+rng.IntN(min(12, per-seq)))
					for i := range msgs {
						msgs[i] = fill(make([]byte, 8+rng.IntN(200)), uint64(k)<<32|uint64(seq+i))
					}
					n, err := p.WriteBatch(msgs)
					if err != nil && !errors.Is(err, ring.ErrFull) {
						panic(err)
					}
					if seq += n; n == 0 {
						runtime.Gosched()
					}
					continue
				}
				msg := fill(buf[:8+rng.IntN(500)], uint64(k)<<32|uint64(seq))
				var err error
				if rng.IntN(4) == 0 {
					var b []byte
					if b, err = p.Claim(len(msg)); err == nil {
						copy(b, msg)
						if rng.IntN(5) == 0 {
							p.Abort()
							continue
						}
						err = p.Commit()
					}
				} else {
					err = p.TryWrite(msg)
				}
				if errors.Is(err, ring.ErrFull) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					panic(err)
				}
				seq++
				if rng.IntN(64) == 0 {
					runtime.Gosched()
				}
			}
		}(k)
	}
	next := make([]int, producers)
	total := 0
	var bad error
	for total < producers*per && bad == nil {
		n, err := c.ReadBatch(64, func(m []byte) {
			k := 0
			for ; k < producers; k++ {
				if bytes.Equal(m, fill(make([]byte, len(m)), uint64(k)<<32|uint64(next[k]))) {
					break
				}
			}
			if k == producers && bad == nil {
				bad = fmt.Errorf("message %d matches no producer's next message", total)
				return
			}
			next[k]++
			total++
		})
		require.NoError(t, err)
		if n == 0 {
			runtime.Gosched()
		}
	}
	wg.Wait()
	require.NoError(t, bad)
	st := r.Stats()
	require.Equal(t, uint64(producers*per), st.MsgsIn)
	require.Equal(t, uint64(producers*per), st.MsgsOut)
	require.Zero(t, st.Lost)
}

// Linearizability: producers enqueue, the consumer dequeues; porcupine
// checks the recorded history against a FIFO queue. Only completed
// operations are recorded: a write refused as full, an aborted claim and an
// empty read change nothing. (An empty read is not linearizable against a
// queue in an MPSC ring: a later producer's committed message can wait behind
// an earlier producer's uncommitted one. Only successful dequeues are
// recorded, and the drain at the end checks nothing is left.)
type qInput struct {
	enq bool
	v   int
	vs  []int // a batch written as one run: enqueues all of vs at once
}

var fifoModel = porcupine.Model{
	Init: func() any { return []int(nil) },
	Step: func(state, input, output any) (bool, any) {
		q := state.([]int)
		in := input.(qInput)
		if in.enq && in.vs != nil {
			return true, append(append([]int(nil), q...), in.vs...)
		}
		if in.enq {
			return true, append(append([]int(nil), q...), in.v)
		}
		if len(q) == 0 || q[0] != output.(int) {
			return false, q
		}
		return true, q[1:]
	},
	Equal: func(a, b any) bool {
		x, y := a.([]int), b.([]int)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	},
	DescribeOperation: func(input, output any) string {
		in := input.(qInput)
		if in.enq && in.vs != nil {
			return fmt.Sprintf("enq%v", in.vs)
		}
		if in.enq {
			return fmt.Sprintf("enq(%d)", in.v)
		}
		return fmt.Sprintf("deq() -> %v", output)
	},
}

func TestMPSCLinearizable(t *testing.T) {
	// The checker's search grows fast with the operations that overlap in
	// time, and the race detector slows both the run and the checker:
	// shorter histories there keep the check in seconds.
	histories, per := 30, 150
	if raceEnabled || testing.Short() {
		// 100 per producer once took the checker past 60 s at GOMAXPROCS 4
		// under -race (slow operations overlap more).
		histories, per = 10, 60
	}
	for h := 0; h < histories; h++ {
		procs := []int{1, 2, 4}[h%3]
		seed := uint64(time.Now().UnixNano())
		t.Run(fmt.Sprintf("gomaxprocs=%d/seed=%d", procs, seed), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			// The checker's time depends on how much the operations
			// overlapped, which depends on the machine's load: a check
			// that runs out of time (Unknown) proves nothing either way,
			// so a new, shorter history is recorded and checked instead,
			// down to 10 per producer. Only a history found not
			// linearizable fails, or one that short still unchecked.
			for n := per; ; n /= 2 {
				ops := recordHistory(t, seed, 4, n)
				start := time.Now()
				res, info := porcupine.CheckOperationsVerbose(fifoModel, ops, 60*time.Second)
				t.Logf("checked %d operations in %v: %v", len(ops), time.Since(start).Round(time.Millisecond), res)
				if res == porcupine.Illegal {
					path := fmt.Sprintf("%s/mpsc-history.html", t.TempDir())
					_ = porcupine.VisualizePath(fifoModel, info, path)
					t.Fatalf("history of %d operations is not linearizable (visualisation: %s)", len(ops), path)
				}
				if res == porcupine.Ok {
					return
				}
				require.Greater(t, n/2, 9, "the checker ran out of time even on a history of %d operations", len(ops))
				seed++
			}
		})
	}
}

// recordHistory runs producers writing per values each and a consumer
// reading them all, with random delays, and returns the history.
func recordHistory(t *testing.T, seed uint64, producers, per int) []porcupine.Operation {
	r, c := newMPSC(t, 1<<10, 96, producers)
	var clock atomic.Int64
	var mu sync.Mutex
	var ops []porcupine.Operation
	record := func(id int, in qInput, out any, call, ret int64) {
		mu.Lock()
		ops = append(ops, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
		mu.Unlock()
	}
	jitter := func(rng *rand.Rand) {
		switch rng.IntN(8) {
		case 0:
			runtime.Gosched()
		case 1:
			for i := rng.IntN(2000); i > 0; i-- {
				_ = i * i
			}
		}
	}
	var wg sync.WaitGroup
	for k := 0; k < producers; k++ {
		p := slotProducer(t, r, k) // here: require must not run off the test goroutine
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(k)))
			for i := 0; i < per; {
				v := k*100000 + i
				if rng.IntN(4) == 0 {
					// A batch of up to 4. Each piece (a run of records in
					// one reservation, or a record written alone: a run
					// ends at the end of the data area or of the room,
					// and others' messages may come between pieces) is one
					// atomic enqueue of its messages, between the clock
					// ticks taken before and after it (the hook).
					var msgs [][]byte
					for j := range 1 + rng.IntN(min(4, per-i)) {
						msgs = append(msgs, []byte(fmt.Sprint(v+j, ":", string(make([]byte, rng.IntN(80))))))
					}
					jitter(rng)
					call, done := clock.Add(1), 0
					ring.SetAfterRun(p, func(n int) {
						ret := clock.Add(1)
						vs := make([]int, n)
						for j := range vs {
							vs[j] = v + done + j
						}
						record(k, qInput{enq: true, vs: vs}, nil, call, ret)
						call, done = ret, done+n
					})
					n, _ := p.WriteBatch(msgs)
					ring.SetAfterRun(p, nil)
					if n != done {
						panic(fmt.Sprintf("WriteBatch wrote %d, its pieces %d", n, done))
					}
					i += n
					continue
				}
				msg := []byte(fmt.Sprint(v, ":", string(make([]byte, rng.IntN(80)))))
				jitter(rng)
				call := clock.Add(1)
				var err error
				if rng.IntN(3) == 0 {
					var b []byte
					if b, err = p.Claim(len(msg)); err == nil {
						copy(b, msg)
						jitter(rng)
						if rng.IntN(4) == 0 {
							p.Abort()
							continue
						}
						err = p.Commit()
					}
				} else {
					err = p.TryWrite(msg)
				}
				ret := clock.Add(1)
				if err != nil {
					continue // full: no effect, not recorded
				}
				record(k, qInput{enq: true, v: v}, nil, call, ret)
				i++
			}
		}(k)
	}
	rng := rand.New(rand.NewPCG(seed, 1000))
	deadline := time.Now().Add(60 * time.Second)
	for got := 0; got < producers*per; {
		if time.Now().After(deadline) {
			wg.Wait()
			recs, perr := r.Peek(10)
			t.Fatalf("consumer stuck after %d of %d messages: stats %+v; blocked %v; next records %+v (%v)", got, producers*per, r.Stats(), c.Blocked(), recs, perr)
		}
		jitter(rng)
		call := clock.Add(1)
		var v int
		ok, err := c.TryRead(func(m []byte) { fmt.Sscanf(string(m), "%d:", &v) })
		ret := clock.Add(1)
		require.NoError(t, err)
		if ok {
			record(producers, qInput{}, v, call, ret)
			got++
		}
	}
	wg.Wait()
	return ops
}

// TestMPSCJoinWhileBusy attaches producers to a ring that other producers
// and the consumer are moving: the frontier loaded first can be overtaken by
// the consumer position loaded second, which once made NewSlotProducer (and
// Free) report a healthy ring as corrupt.
func TestMPSCJoinWhileBusy(t *testing.T) {
	const writers = 2
	r, c := newMPSC(t, 1<<10, 64, writers+1)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for k := 0; k < writers; k++ {
		p := slotProducer(t, r, k)
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 8)
			for !stop.Load() {
				if p.TryWrite(msg) != nil {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if n, _ := c.ReadBatch(4, func([]byte) {}); n == 0 {
				runtime.Gosched()
			}
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	joins := 200_000
	if raceEnabled {
		joins = 20_000
	}
	for i := 0; i < joins; i++ {
		p, err := r.NewSlotProducer(writers)
		require.NoError(t, err, "join %d", i)
		free, err := p.Free()
		require.NoError(t, err, "free after join %d", i)
		require.LessOrEqual(t, free, uint64(1<<10))
	}
}

// TestFIFOModelRejects makes sure the linearizability check can fail: a
// history that delivers out of real-time order is illegal.
func TestFIFOModelRejects(t *testing.T) {
	op := func(id int, in qInput, out any, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: id, Input: in, Output: out, Call: call, Return: ret}
	}
	bad := []porcupine.Operation{
		op(0, qInput{enq: true, v: 1}, nil, 1, 2),
		op(1, qInput{enq: true, v: 2}, nil, 3, 4),
		op(2, qInput{}, 2, 5, 6),
		op(2, qInput{}, 1, 7, 8),
	}
	require.False(t, porcupine.CheckOperations(fifoModel, bad))
	concurrent := []porcupine.Operation{
		op(0, qInput{enq: true, v: 1}, nil, 1, 4),
		op(1, qInput{enq: true, v: 2}, nil, 2, 3),
		op(2, qInput{}, 2, 5, 6),
		op(2, qInput{}, 1, 7, 8),
	}
	require.True(t, porcupine.CheckOperations(fifoModel, concurrent), "overlapping enqueues may take either order")
}

func TestMPSCAttachRefusals(t *testing.T) {
	cfg := ring.Config{Kind: ring.MPSC, Capacity: 1 << 12, Slots: 40}
	size, err := ring.Size(cfg)
	require.NoError(t, err)
	require.Equal(t, uint64(4096+8192+4096), size, "40 slots of 128 bytes round up to two pages")
	region := make([]byte, size)
	require.NoError(t, ring.Format(region, cfg))
	_, err = ring.Attach(region)
	require.NoError(t, err)
	region[56] = 0 // slot count, then reseal the checksum
	binary.LittleEndian.PutUint32(region[ring.OffChecksum:], crc32.Checksum(region[:ring.OffChecksum], crc32.MakeTable(crc32.Castagnoli)))
	_, err = ring.Attach(region)
	require.ErrorIs(t, err, ring.ErrCorrupt)
	require.Contains(t, err.Error(), "0 slots")
}

// TestTimestamps: records of a ring created with timestamps carry their
// commit time, invisibly; every size goes through the wrap, claims shrink
// and abort, and every delivered record's delay lands in the histogram.
func TestTimestamps(t *testing.T) {
	for _, kind := range []ring.Kind{ring.SPSC, ring.MPSC} {
		cfg := ring.Config{Kind: kind, Capacity: 1 << 11, MaxMessage: 200, Timestamps: true}
		size, err := ring.Size(cfg)
		require.NoError(t, err)
		region := make([]byte, size)
		require.NoError(t, ring.Format(region, cfg))
		r, err := ring.Attach(region)
		require.NoError(t, err)
		require.True(t, r.Timestamps())
		var p *ring.Producer
		if kind == ring.SPSC {
			p, err = r.NewProducer()
		} else {
			p, err = r.NewSlotProducer(1)
		}
		require.NoError(t, err)
		c, err := r.NewConsumer()
		require.NoError(t, err)
		var want []string
		buf := make([]byte, 200)
		for round := 0; round < 3; round++ {
			for n := 0; n <= 200; n++ {
				m := fill(buf[:n], uint64(n+round))
				switch n % 3 {
				case 0:
					require.NoError(t, p.TryWrite(m))
					want = append(want, string(m))
				case 1:
					b, err := p.Claim(n + 7)
					if errors.Is(err, ring.ErrTooLarge) {
						continue
					}
					require.NoError(t, err)
					copy(b, m)
					require.NoError(t, p.CommitN(n))
					want = append(want, string(m))
				case 2:
					_, err := p.Claim(n)
					require.NoError(t, err)
					p.Abort()
				}
				got := drain(t, c)
				if len(want) == 0 {
					require.Empty(t, got, "%v size %d", kind, n)
				} else {
					require.Equal(t, want, got, "%v size %d", kind, n)
				}
				want = want[:0]
			}
		}
		st := r.Stats()
		require.Equal(t, st.MsgsOut, st.DelayCount)
		var inBuckets uint64
		for _, b := range st.DelayBuckets {
			inBuckets += b
		}
		require.Equal(t, st.DelayCount, inBuckets)
		require.NoError(t, r.SetTargetDelay(time.Millisecond, 10*time.Millisecond))
		require.Equal(t, time.Millisecond, r.Stats().TargetDelay)
	}
	// A ring without timestamps refuses a target delay.
	_, c := newMPSC(t, 1<<10, 64, 1)
	require.Error(t, c.Ring().SetTargetDelay(time.Millisecond, time.Millisecond))
}

// TestAdaptivePressure: delay above the target for a whole interval raises
// the delay bit; the first record under the target lowers it.
func TestAdaptivePressure(t *testing.T) {
	cfg := ring.Config{Capacity: 1 << 16, MaxMessage: 64, Timestamps: true}
	size, _ := ring.Size(cfg)
	region := make([]byte, size)
	require.NoError(t, ring.Format(region, cfg))
	r, err := ring.Attach(region)
	require.NoError(t, err)
	require.NoError(t, r.SetTargetDelay(2*time.Millisecond, 5*time.Millisecond))
	p, _ := r.NewProducer()
	c, _ := r.NewConsumer()
	// Records that waited 10 ms each, read over more than the interval.
	for i := 0; i < 20; i++ {
		require.NoError(t, p.TryWrite([]byte("old")))
	}
	time.Sleep(10 * time.Millisecond)
	for i := 0; i < 20; i++ {
		_, err := c.TryRead(func([]byte) {})
		require.NoError(t, err)
		time.Sleep(500 * time.Microsecond)
	}
	require.NotZero(t, p.Pressure()&ring.PressureDelay, "sustained delay above target raises pressure")
	// A record read at once lowers it, if it was under the target: the
	// time from before the write to after the read bounds its delay. On a
	// loaded machine that may exceed the target (the goroutine descheduled
	// in between): such a round proves nothing, and is retried.
	for lowered := false; !lowered; {
		start := time.Now()
		require.NoError(t, p.TryWrite([]byte("fresh")))
		_, err = c.TryRead(func([]byte) {})
		require.NoError(t, err)
		if time.Since(start) < 2*time.Millisecond {
			require.Zero(t, p.Pressure()&ring.PressureDelay, "a record under target lowers it")
			lowered = true
		}
	}
	require.Equal(t, uint64(2), r.Stats().PressureChanges)
}

// TestSequencesDiscardDuplicates: a producer that restarts resumes after
// its slot's (or the SPSC producer's) last sequence; a retried message is
// delivered once, even after a consumer restart. (TestSequencesSurviveKill
// kills producers inside their writes.)
func TestSequencesDiscardDuplicates(t *testing.T) {
	for _, kind := range []ring.Kind{ring.SPSC, ring.MPSC} {
		r, _, open := seqRing(t, kind, kind == ring.MPSC)
		newP := func() *ring.Producer { return open(1) }
		p := newP()
		require.Equal(t, uint64(1), p.NextSeq())
		from, to := p.InDoubt()
		require.Equal(t, [2]uint64{1, 1}, [2]uint64{from, to}, "a new ring: nothing in doubt")
		for i := 1; i <= 5; i++ {
			require.NoError(t, p.TryWrite([]byte(fmt.Sprint("m", i))))
		}
		n, err := p.WriteBatch([][]byte{[]byte("m6"), []byte("m7")})
		require.NoError(t, err)
		require.Equal(t, 2, n)
		b, err := p.Claim(10)
		require.NoError(t, err)
		require.NoError(t, p.CommitN(copy(b, "m8")))
		require.Equal(t, uint64(9), p.NextSeq())
		p = newP() // a restart after a finished write
		require.Equal(t, uint64(9), p.NextSeq(), "resumes after the last sequence")
		from, to = p.InDoubt()
		if kind == ring.MPSC {
			require.Equal(t, [2]uint64{8, 9}, [2]uint64{from, to}, "mpsc: the last record is always in doubt")
		} else {
			require.Equal(t, [2]uint64{9, 9}, [2]uint64{from, to}, "spsc: the last position store was made")
		}
		require.NoError(t, p.TryWriteSeq(8, []byte("m8 again"))) // the resend of the doubtful one
		require.NoError(t, p.TryWrite([]byte("m9")))
		require.NoError(t, p.TryWriteSeq(3, []byte("m3 again")))
		require.Equal(t, uint64(10), p.NextSeq(), "a resend does not move the numbering back")
		c, err := r.NewConsumer()
		require.NoError(t, err)
		got := drain(t, c)
		require.Equal(t, []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}, got, "%v", kind)
		st := r.Stats()
		require.Equal(t, uint64(2), st.Duplicates)
		// A restarted consumer still knows what was delivered.
		require.NoError(t, p.TryWriteSeq(9, []byte("m9 again")))
		c, err = r.NewConsumer()
		require.NoError(t, err)
		require.Empty(t, drain(t, c))
		require.Equal(t, uint64(3), r.Stats().Duplicates)
		// Resends never lowered the last sequence: a restart still
		// numbers after m9.
		require.Equal(t, uint64(10), newP().NextSeq())
	}
	_, c := newMPSC(t, 1<<10, 64, 1)
	p := slotProducer(t, c.Ring(), 0)
	require.Error(t, p.TryWriteSeq(1, nil), "a ring without sequences")
}

// TestOverwrite: a producer that never waits reclaims the oldest records
// while a slower consumer reads; every record delivered is whole (its
// checksum matches), sequences only increase, and what was neither
// delivered nor reclaimed is still in the ring.
func TestOverwrite(t *testing.T) {
	cfg := ring.Config{Capacity: 1 << 12, MaxMessage: 256, Overwrite: true, Timestamps: true}
	size, _ := ring.Size(cfg)
	region := make([]byte, size)
	require.NoError(t, ring.Format(region, cfg))
	r, err := ring.Attach(region)
	require.NoError(t, err)
	require.True(t, r.Overwrite())
	p, _ := r.NewProducer()
	c, _ := r.NewConsumer()

	// Deterministic first: fill, overwrite two, read the survivors.
	msg := make([]byte, 100) // 120-byte records with the timestamp: 34 fit in 4096
	written := fillSeqs(t, p, msg)
	for k := 0; k < 2; k++ {
		binary.LittleEndian.PutUint64(msg, uint64(written))
		dropped, err := p.TryWriteOverwrite(msg)
		require.NoError(t, err)
		require.Equal(t, 1, dropped)
		written++
	}
	var first uint64
	n, err := c.ReadBatch(1, func(m []byte) { first = binary.LittleEndian.Uint64(m) })
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, uint64(2), first, "the two oldest were reclaimed")
	require.Equal(t, uint64(2), r.Stats().Drops)

	// Then racing: a producer overwriting as fast as it can, a consumer
	// reading slowly; every delivered record must be intact. The consumer's
	// copy races with the producer's overwrite by design (a seqlock: the
	// position check discards what may be torn), which the race detector
	// cannot model; that half runs without it (scripts/test.sh).
	if raceEnabled {
		return
	}
	count := 200_000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 256)
		for i := 0; i < count; i++ {
			m := buf[:16+i%200]
			binary.LittleEndian.PutUint64(m, uint64(written+i))
			binary.LittleEndian.PutUint64(m[8:], crc(m[16:], uint64(written+i)))
			if _, err := p.TryWriteOverwrite(m); err != nil {
				panic(err)
			}
		}
	}()
	var last uint64
	var got int
	all := 1 // the record read in the first phase
	var bad error
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		_, err := c.ReadBatch(8, func(m []byte) {
			all++
			seq := binary.LittleEndian.Uint64(m)
			if seq < uint64(written) {
				return // one of the first phase's survivors
			}
			if bad == nil && (seq <= last && last != 0 || binary.LittleEndian.Uint64(m[8:]) != crc(m[16:], seq)) {
				bad = fmt.Errorf("record %d torn or out of order (after %d)", seq, last)
			}
			last = seq
			got++
		})
		require.NoError(t, err)
		runtime.Gosched()
	}
	require.NoError(t, bad)
	all += len(drainSeqs(t, c))
	st := r.Stats()
	t.Logf("%d written, %d delivered, %d reclaimed, %d reads lapped", count, got, st.Drops, st.Lapped)
	require.Positive(t, got)
	require.Positive(t, st.Drops)
	require.Zero(t, st.Depth)
	require.Equal(t, uint64(written+count), uint64(all)+st.Drops, "every message delivered or counted dropped, not both")
}

func crc(b []byte, seq uint64) uint64 {
	return uint64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))) ^ seq*0x9E3779B97F4A7C15
}

func newSharedOverwrite(t testing.TB, capacity, maxMsg uint64, slots int) ([]byte, *ring.Ring) {
	t.Helper()
	region, r := formatRing(t, ring.Config{Kind: ring.MPSC, Capacity: capacity, MaxMessage: maxMsg, Slots: slots, Overwrite: true})
	require.True(t, r.Overwrite())
	return region, r
}

// TestSharedOverwriteBasics: drop-oldest in an MPSC ring reclaims the
// oldest records whichever producer wrote them, and is layout version 2,
// which a version-1 label contradicts.
func TestSharedOverwriteBasics(t *testing.T) {
	region, r := newSharedOverwrite(t, 1<<12, 256, 2)
	require.Equal(t, ring.VersionSharedOverwrite, binary.LittleEndian.Uint32(region[ring.OffVersion:]))
	p0, p1 := slotProducer(t, r, 0), slotProducer(t, r, 1)
	c, err := r.NewConsumer()
	require.NoError(t, err)

	msg := make([]byte, 100) // 112-byte records: 36 fit in 4096
	written := fillSeqs(t, p0, msg)
	for k := 0; k < 2; k++ {
		binary.LittleEndian.PutUint64(msg, uint64(written))
		dropped, err := p1.TryWriteOverwrite(msg)
		require.NoError(t, err)
		require.Equal(t, 1, dropped)
		written++
	}
	got := drainSeqs(t, c)
	require.Len(t, got, written-2)
	for k, v := range got {
		require.Equal(t, uint64(k+2), v, "the two oldest were reclaimed, the rest in order")
	}
	st := r.Stats()
	require.Equal(t, uint64(2), st.Drops)
	require.Equal(t, uint64(written), st.MsgsIn)
	require.Equal(t, uint64(written-2), st.MsgsOut)

	// A record larger than the window never fits: given up and counted.
	r.SetWindow(64)
	_, err = p0.TryWriteOverwrite(msg)
	require.ErrorIs(t, err, ring.ErrFull)
	require.Equal(t, uint64(3), r.Stats().Drops)
	r.SetWindow(0)

	// The version must match the configuration.
	bad := append([]byte(nil), region...)
	binary.LittleEndian.PutUint32(bad[ring.OffVersion:], ring.Version)
	_, err = ring.Attach(bad)
	require.ErrorIs(t, err, ring.ErrCorrupt)
	binary.LittleEndian.PutUint32(bad[ring.OffVersion:], 3)
	_, err = ring.Attach(bad)
	require.ErrorIs(t, err, ring.ErrIncompatible)
}

// fillSeqs writes msg, its first 8 bytes numbering it from 0, until the
// ring is full, and returns how many it wrote.
func fillSeqs(t *testing.T, p *ring.Producer, msg []byte) int {
	t.Helper()
	for written := 0; ; written++ {
		binary.LittleEndian.PutUint64(msg, uint64(written))
		if err := p.TryWrite(msg); err != nil {
			require.ErrorIs(t, err, ring.ErrFull)
			return written
		}
	}
}

func drainSeqs(t *testing.T, c *ring.Consumer) []uint64 {
	t.Helper()
	var got []uint64
	for {
		n, err := c.ReadBatch(100, func(m []byte) { got = append(got, binary.LittleEndian.Uint64(m)) })
		require.NoError(t, err)
		if n == 0 {
			return got
		}
	}
}

// TestSharedOverwriteDeadHolder: a producer killed while it held the
// release lock, its zeroing mark published and nothing zeroed (the real
// reclaim stopped there by a test hook), stalls nobody once it is known
// dead: the next party finishes its release. While it counts as alive,
// producers give up (counted) and the consumer reads nothing, without
// error.
func TestSharedOverwriteDeadHolder(t *testing.T) {
	_, r := newSharedOverwrite(t, 1<<12, 256, 2)
	var dead atomic.Bool
	setAlive(t, r, func(h int) bool { return h != 0 || !dead.Load() })
	p0, p1 := slotProducer(t, r, 0), slotProducer(t, r, 1)
	c, err := r.NewConsumer()
	require.NoError(t, err)
	msg := make([]byte, 100)
	written := fillSeqs(t, p1, msg)
	// Slot 0 "dies" in its reclaim holding the lock, the oldest record marked
	// for release but not zeroed.
	ring.ReclaimDying(t, p0, msg)

	binary.LittleEndian.PutUint64(msg, uint64(written))
	_, err = p1.TryWriteOverwrite(msg)
	require.ErrorIs(t, err, ring.ErrFull, "the holder is alive: give up")
	require.Equal(t, uint64(1), r.Stats().Drops)
	n, err := c.ReadBatch(10, func([]byte) {})
	require.NoError(t, err)
	require.Zero(t, n, "the consumer does not read while a live producer releases")

	dead.Store(true)
	dropped, err := p1.TryWriteOverwrite(msg)
	require.NoError(t, err)
	require.Equal(t, 0, dropped, "the dead holder's release made the room")
	got := drainSeqs(t, c)
	require.Len(t, got, written)
	for k, v := range got {
		require.Equal(t, uint64(k+1), v)
	}
	require.Equal(t, uint64(written+1), r.Stats().MsgsIn)
}

// TestSharedOverwriteRace: producers that never wait reclaim the oldest
// records while a slower consumer reads. Every record delivered is whole,
// each producer's records arrive in order, and the accounting is exact:
// every message written was delivered or counted dropped (reclaimed, or
// given up). The consumer's copy races with reclamation by design (it is
// validated under the release lock), which the race detector cannot
// model: this runs without it (scripts/test.sh runs TestOverwrite and this
// without -race).
func TestSharedOverwriteRace(t *testing.T) {
	if raceEnabled {
		t.Skip("the consumer's copy races with reclamation by design; run without -race")
	}
	const producers = 3
	_, r := newSharedOverwrite(t, 1<<12, 256, producers)
	c, err := r.NewConsumer()
	require.NoError(t, err)
	count := 100_000
	if testing.Short() {
		count = 20_000
	}
	var wg sync.WaitGroup
	var fulls atomic.Int64
	for k := 0; k < producers; k++ {
		p := slotProducer(t, r, k)
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			buf := make([]byte, 256)
			for i := 0; i < count; i++ {
				m := buf[:24+(i*7+k)%200]
				seq := uint64(k)<<40 | uint64(i)
				binary.LittleEndian.PutUint64(m, seq)
				binary.LittleEndian.PutUint64(m[8:], crc(m[16:], seq))
				if _, err := p.TryWriteOverwrite(m); err != nil {
					if !errors.Is(err, ring.ErrFull) {
						panic(err)
					}
					fulls.Add(1)
				}
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		}(k)
	}
	last := make([]int64, producers)
	for k := range last {
		last[k] = -1
	}
	got := 0
	var bad error
	read := func(m []byte) {
		seq := binary.LittleEndian.Uint64(m)
		k, i := int(seq>>40), int64(seq&(1<<40-1))
		switch {
		case bad != nil:
		case k >= producers || binary.LittleEndian.Uint64(m[8:]) != crc(m[16:], seq):
			bad = fmt.Errorf("record %#x torn", seq)
		case i <= last[k]:
			bad = fmt.Errorf("producer %d: record %d after %d", k, i, last[k])
		}
		if k < producers {
			last[k] = i
		}
		got++
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		_, err := c.ReadBatch(4, read)
		require.NoError(t, err)
		runtime.Gosched()
	}
	for {
		n, err := c.ReadBatch(100, read)
		require.NoError(t, err)
		if n == 0 {
			break
		}
	}
	require.NoError(t, bad)
	st := r.Stats()
	t.Logf("%d written, %d delivered, %d dropped (%d given up), %d reads lapped", producers*count, got, st.Drops, fulls.Load(), st.Lapped)
	require.Zero(t, st.Depth)
	require.Equal(t, uint64(producers*count), st.MsgsIn+uint64(fulls.Load()))
	require.Equal(t, uint64(got), st.MsgsOut)
	require.Equal(t, uint64(producers*count), uint64(got)+st.Drops, "every message delivered or counted dropped")
	require.Positive(t, got)
	require.Greater(t, st.Drops, uint64(fulls.Load()), "some reclaimed")
}

// TestSharedOverwriteConsumerDiesHoldingLock: a drop-oldest MPSC consumer
// killed while it held the release lock (its zeroing mark ahead of the
// position) stalls nobody: producers displace it once it is known dead and
// finish its release, and a new consumer, finding its own role's ID in the
// lock, does the same.
func TestSharedOverwriteConsumerDiesHoldingLock(t *testing.T) {
	for _, who := range []string{"producer", "new consumer"} {
		region, r := newSharedOverwrite(t, 1<<12, 256, 1)
		consumerAlive := true
		setAlive(t, r, func(h int) bool { return h != holderConsumer || consumerAlive })
		p := slotProducer(t, r, 0)
		msg := make([]byte, 100)
		written := fillSeqs(t, p, msg)
		// The consumer "dies" mid-release of the first record: lock held
		// by the consumer, the zeroing mark past the first record, half of
		// it zeroed, the position not moved.
		size := uint64(112)
		binary.LittleEndian.PutUint64(region[ring.OffReleaseLock:], 1<<32)
		binary.LittleEndian.PutUint64(region[ring.OffZeroEnd:], size)
		data := region[len(region)-(1<<12):]
		clear(data[:size/2])

		binary.LittleEndian.PutUint64(msg, uint64(written))
		_, err := p.TryWriteOverwrite(msg)
		require.ErrorIs(t, err, ring.ErrFull, "%s: the consumer counts as alive: give up", who)
		consumerAlive = false
		if who == "producer" {
			dropped, err := p.TryWriteOverwrite(msg)
			require.NoError(t, err, who)
			require.Equal(t, 0, dropped, "%s: the dead consumer's release made the room", who)
		}
		c, err := r.NewConsumer()
		require.NoError(t, err)
		got := drainSeqs(t, c)
		require.NotEmpty(t, got)
		require.Equal(t, uint64(1), got[0], "%s: the record being released is gone, the next is first", who)
		require.Zero(t, binary.LittleEndian.Uint64(region[ring.OffReleaseLock:]), "%s: the lock is free", who)
		require.Zero(t, r.Stats().Depth)
	}
}

// TestMPSCWriteBatch: an MPSC WriteBatch takes one reservation per run of
// records (the intent covers the run), never wraps a run (the record that
// must wrap goes alone, after its padding), stops at a message too large
// or at a full ring as single writes do, and keeps sequences and counters
// as single writes keep them.
func TestMPSCWriteBatch(t *testing.T) {
	for _, seqs := range []bool{false, true} {
		t.Run(fmt.Sprintf("sequences=%v", seqs), func(t *testing.T) {
			_, r := formatRing(t, ring.Config{Kind: ring.MPSC, Capacity: 1 << 10, MaxMessage: 128, Slots: 2, Sequences: seqs, Timestamps: seqs})
			c, err := r.NewConsumer()
			require.NoError(t, err)
			p := slotProducer(t, r, 0)
			var want []string
			batch := func(sizes ...int) [][]byte {
				var msgs [][]byte
				for _, n := range sizes {
					msgs = append(msgs, fill(make([]byte, n), uint64(len(want)+len(msgs))))
				}
				return msgs
			}
			take := func(msgs [][]byte, n int) {
				for _, m := range msgs[:n] {
					want = append(want, string(m))
				}
			}

			before := r.Stats().ProducerPos
			msgs := batch(10, 20, 30, 40, 50)
			n, err := p.WriteBatch(msgs)
			require.NoError(t, err)
			require.Equal(t, 5, n)
			take(msgs, n)
			ipos, ilen := ring.Intent(r, 0)
			require.Equal(t, before, ipos, "one reservation")
			require.Equal(t, r.Stats().ProducerPos-before, ilen, "covering the whole run")
			read := drain(t, c)
			require.Equal(t, want, read)

			// Runs across the end of the data area: 40 messages, read as
			// they go; every one arrives, in order.
			for round := 0; round < 6; round++ {
				msgs = batch(40, 1, 100, 60, 0, 8, 127, 33)
				for done := 0; done < len(msgs); {
					n, err := p.WriteBatch(msgs[done:])
					require.NoError(t, err)
					require.Positive(t, n)
					take(msgs[done:], n)
					done += n
					read = append(read, drain(t, c)...)
				}
			}

			// A message too large stops the batch at its index; the ones
			// before it are written.
			msgs = batch(5, 6, 129, 7)
			n, err = p.WriteBatch(msgs)
			require.ErrorIs(t, err, ring.ErrTooLarge)
			require.Equal(t, 2, n)
			take(msgs, n)

			// A full ring: what fits is written, then ErrFull.
			var total int
			for {
				msgs = batch(100, 100, 100, 100)
				n, err := p.WriteBatch(msgs)
				take(msgs, n)
				total += n
				if err != nil {
					require.ErrorIs(t, err, ring.ErrFull)
					require.Zero(t, n)
					break
				}
			}
			require.Positive(t, total)

			read = append(read, drain(t, c)...)
			require.Equal(t, want, read)
			st := r.Stats()
			require.Equal(t, uint64(len(want)), st.MsgsIn)
			require.Equal(t, uint64(len(want)), st.MsgsOut)
			if seqs {
				require.Equal(t, uint64(len(want)+1), p.NextSeq(), "every record took a sequence")
			}
		})
	}
}

// TestMPSCBatchDeadProducer: a producer dies part of the way through a
// batch's run, after some records are committed, with the next one not
// begun, pending, or half written. The committed ones are delivered, the
// rest of the run is skipped (in at most two pieces, each counted lost)
// once the producer is dead and never while it lives, and the ring goes on.
func TestMPSCBatchDeadProducer(t *testing.T) {
	for _, step := range []int{ring.StepCAS, ring.StepPending, ring.StepPayload, ring.StepCounted} {
		t.Run(fmt.Sprintf("step=%d", step), func(t *testing.T) {
			r, c := newMPSC(t, 1<<12, 128, 3)
			dead, live := slotProducer(t, r, 0), slotProducer(t, r, 1)
			require.NoError(t, live.TryWrite([]byte("before")))
			var msgs [][]byte
			for i := range 6 {
				msgs = append(msgs, []byte(fmt.Sprintf("batch %d %s", i, bytes.Repeat([]byte("x"), 20*i))))
			}
			var run uint64
			for _, m := range msgs {
				run += ring.RecordSize(uint64(len(m)))
			}
			ring.BatchDying(t, dead, msgs, 2, step)
			_, intent := ring.Intent(r, 0)
			require.Equal(t, run, intent, "the whole batch was one run")
			require.NoError(t, live.TryWrite([]byte("after")))

			require.Equal(t, []string{"before", string(msgs[0]), string(msgs[1])}, drain(t, c))
			require.Equal(t, []string{"after"}, recoverDeadSlot0(t, c))
			st := r.Stats()
			wantLost := uint64(1)
			if step >= ring.StepPending {
				wantLost = 2 // the record in flight, then the run's unwritten rest
			}
			require.Equal(t, wantLost, st.Lost)
			require.Equal(t, st.ProducerPos, st.ConsumerPos)
			wantIn := uint64(2)
			if step == ring.StepCounted {
				wantIn = 3 // counted before its commit, as a successor resuming from the count needs
			}
			require.Equal(t, wantIn, r.Slot(0).MsgsIn, "the committed records were counted, the rest not")

			// The ring is whole afterwards, for batches too.
			for size := 0; size <= 128; size += 7 {
				m := fill(make([]byte, size), 1)
				n, err := live.WriteBatch([][]byte{m, m, m})
				require.NoError(t, err)
				require.Equal(t, 3, n)
				require.Equal(t, []string{string(m), string(m), string(m)}, drain(t, c))
			}
		})
	}
}

// TestMPSCLoserWithdrawsIntent: a producer loses the reservation's
// compare-and-swap to another, which dies with the space reserved and
// nothing written; the loser then finds the ring full. Its intent, which
// covers the dead winner's reservation, must be withdrawn: left in place,
// it made the consumer wait for the live loser to commit a record it never
// owned, while the dead winner's record held up the ring.
func TestMPSCLoserWithdrawsIntent(t *testing.T) {
	r, c := newMPSC(t, 1<<10, 128, 3)
	loser, winner, other := slotProducer(t, r, 0), slotProducer(t, r, 1), slotProducer(t, r, 2)
	for range 6 {
		require.NoError(t, other.TryWrite(make([]byte, 120))) // 128 bytes each
	}
	require.NoError(t, other.TryWrite(make([]byte, 100))) // 112: 144 bytes left
	msg := make([]byte, 128)                              // 136 bytes: one fits, not two
	won := false
	ring.SetHook(loser, func(step int) {
		if step != ring.StepIntent || won {
			return
		}
		// The loser has published its intent; the winner takes the
		// space first and dies there.
		won = true
		ring.DieAt(winner, ring.StepCAS, 1)
		require.True(t, ring.RunDying(func() { _ = winner.TryWrite(msg) }), "the winner reserved")
	})
	require.ErrorIs(t, loser.TryWrite(msg), ring.ErrFull, "the loser retried and found the ring full")
	require.True(t, won)
	_, ilen := ring.Intent(r, 0)
	require.Zero(t, ilen, "the loser withdrew its intent")

	require.Len(t, drain(t, c), 7)
	require.True(t, c.Blocked(), "at the dead winner's reservation")
	alive := func(slot int) bool { return slot != 1 } // the loser lives
	ok, err := recoverWith(t, c, alive)
	require.NoError(t, err)
	require.True(t, ok, "the dead winner's record is skipped while the loser lives")
	require.Equal(t, uint64(1), r.Slot(1).Lost)
	require.Zero(t, r.Slot(0).Lost)
	require.Empty(t, drain(t, c))
	require.NoError(t, loser.TryWrite([]byte("loser")))
	require.Equal(t, []string{"loser"}, drain(t, c))
}

// TestMPSCCountedBeforeCommit: an MPSC producer counts a message in its
// slot before it commits it (a restarted producer resumes its sequence
// from the count, and a consumer must never see a message the count does
// not include).
func TestMPSCCountedBeforeCommit(t *testing.T) {
	t.Run("at-the-commit", mpscCountedAtCommit)
	t.Run("concurrent", mpscCountedConcurrent)
}

// mpscCountedAtCommit stops each write at its last step before the commit
// (a test hook): the record is still pending there, and already counted.
// Unlike the concurrent test, this needs no lucky interleaving.
func mpscCountedAtCommit(t *testing.T) {
	r, c := newMPSC(t, 1<<10, 64, 1)
	p := slotProducer(t, r, 0)
	stops := 0
	ring.SetHook(p, func(step int) {
		if step != ring.StepCounted {
			return
		}
		stops++
		recs, err := r.Peek(64)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		require.Equal(t, uint8(ring.TypePending), recs[len(recs)-1].Type, "the record is not committed yet")
		require.Equal(t, uint64(stops), r.Slot(0).MsgsIn, "and already counted")
	})
	require.NoError(t, p.TryWrite([]byte("single")))
	n, err := p.WriteBatch([][]byte{[]byte("batch 0"), []byte("batch 1"), []byte("batch 2")})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, 4, stops)
	require.Equal(t, []string{"single", "batch 0", "batch 1", "batch 2"}, drain(t, c))
}

// mpscCountedConcurrent: producer and consumer in goroutines; each message
// carries its sequence, and when it is delivered the slot's messages-in is
// at least that sequence + 1.
func mpscCountedConcurrent(t *testing.T) {
	n := 1000000
	if testing.Short() || raceEnabled {
		n = 20000
	}
	r, c := newMPSC(t, 1<<10, 8, 1)
	p := slotProducer(t, r, 0)
	done := make(chan error, 1)
	var stop atomic.Bool
	go func() {
		msg := make([]byte, 8)
		for seq := uint64(0); seq < uint64(n) && !stop.Load(); {
			binary.LittleEndian.PutUint64(msg, seq)
			switch err := p.TryWrite(msg); {
			case err == nil:
				seq++
			case errors.Is(err, ring.ErrFull):
				runtime.Gosched()
			default:
				done <- err
				return
			}
		}
		done <- nil
	}()
	defer stop.Store(true) // a failing consumer ends the producer too
	var bad error
	next := uint64(0)
	for next < uint64(n) && bad == nil {
		got, err := c.ReadBatch(16, func(m []byte) {
			seq := binary.LittleEndian.Uint64(m)
			if in := r.Slot(0).MsgsIn; in < seq+1 && bad == nil {
				bad = fmt.Errorf("message %d delivered while the slot's messages-in was %d", seq, in)
			}
			if seq != next && bad == nil {
				bad = fmt.Errorf("got message %d, want %d", seq, next)
			}
			next++
		})
		require.NoError(t, err)
		if got == 0 {
			select {
			case err := <-done:
				require.NoError(t, err)
				done <- nil // ended: read what is left
			default:
			}
			runtime.Gosched()
		}
	}
	require.NoError(t, bad)
	require.NoError(t, <-done)
}
