package bridge_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// The backpressure chain of the out direction, against a real server: the
// stream refuses or stalls, the bridge's window fills (never above
// OutConfig.Window), it stops reading, the ring fills, and each local
// producer's own policy acts: one waits (its deadline-bounded writes end
// with context.DeadlineExceeded and it retries the same message), one drops
// (Full: Drop, counted), one hands the message to its overflow route. Once
// the stall ends everything flows again, and the far end holds exactly the
// messages the producers did not drop or overflow themselves: each once.
//
// Three stalls: a stream with MaxMsgs and DiscardNew; a work-queue stream
// (MaxMsgs, DiscardNew) whose remote pull consumer has MaxAckPending
// deliveries unacknowledged; the server shut down (then restarted on its
// store).
func TestOutBackpressure(t *testing.T) {
	const (
		maxMsgs = 40 // the stream's limit
		pending = 8  // the remote consumer's MaxAckPending (work queue)
	)
	for _, tc := range []struct {
		name      string
		workQueue bool
		shutdown  bool
	}{
		{name: "discard-new"},
		{name: "work-queue", workQueue: true},
		{name: "server-down", shutdown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t)
			js := connect(t, srv.URL())
			sc := jetstream.StreamConfig{Name: "BPO", Subjects: []string{"BPO.>"}, Storage: jetstream.FileStorage}
			if !tc.shutdown {
				sc.MaxMsgs, sc.Discard = maxMsgs, jetstream.DiscardNew
			}
			if tc.workQueue {
				sc.Retention = jetstream.WorkQueuePolicy
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			_, err := js.CreateStream(ctx, sc)
			require.NoError(t, err)
			var remote *bpRemote
			if tc.workQueue {
				remote = bpNewRemote(t, js, "BPO", pending)
			}

			rig := bpStart(t, srv.URL(), "BPO.x")
			// Phase 1, flowing: 10 messages of each producer reach the stream.
			rig.produce(t, 0, 10)
			rig.waitIdle(t, 30)

			// The stall.
			switch {
			case tc.workQueue:
				remote.fetchHold(t, pending) // MaxAckPending reached: the server delivers no more
			case tc.shutdown:
				srv.Shutdown()
			}
			// Phase 2: the rest, more than the stream, the window and the
			// ring can take together.
			rig.produce(t, 10, bpPerProducer)
			rig.waitStalled(t)
			if !tc.shutdown {
				// The stream fills and refuses: the window fills, and stays
				// full; the bridge released only what the stream took.
				waitFor(t, "the stream to fill", func() bool {
					info, err := js.Stream(ctx, "BPO")
					return err == nil && info.CachedInfo().State.Msgs == maxMsgs
				})
				waitFor(t, "the window to fill", func() bool { return rig.out.Stats().InFlight == bpWindow })
				require.LessOrEqual(t, rig.out.Stats().Released, uint64(maxMsgs), "released only what the stream acknowledged")
			}
			t.Logf("stalled: %v", rig.out.Stats())

			// The stall ends.
			var got map[uint64]int
			switch {
			case tc.workQueue:
				remote.resume(t)
			case tc.shutdown:
				require.NoError(t, srv.Restart())
			default:
				sc.MaxMsgs = -1
				_, err := js.UpdateStream(ctx, sc)
				require.NoError(t, err)
			}
			want := rig.finish(t)
			if tc.workQueue {
				got = remote.waitAll(t, want)
			} else {
				got = bpReadStream(t, js, "BPO", want)
			}
			rig.verify(t, got)
		})
	}
}

// bpPerProducer is how many messages each producer of TestOutBackpressure
// writes: with 128-byte messages far more than the stream (40), the window
// (16) and the ring (8 KiB) hold together, so every producer meets the
// stall.
const bpPerProducer = 300

// bpSize is the size of TestOutBackpressure's messages.
const bpSize = 128

// bpWindow is the out-bridge's window in TestOutBackpressure.
const bpWindow = 16

// bpRig is an MPSC ring with three producers of different full-ring
// policies and an out-bridge publishing it to a stream.
type bpRig struct {
	r   *ipc.Ring
	out *bridge.Out

	wait, drop, over *ipc.Producer // IDs 1, 2, 3
	deadlines        atomic.Uint64 // the waiting producer's writes that met their deadline (each retried)
	maxInFlight      atomic.Int64  // the most OutStats.InFlight seen

	mu         sync.Mutex
	dropped    map[uint64]bool // drop producer: messages refused (ErrFull)
	overflowed map[uint64]bool // overflow producer: messages routed
	wg         sync.WaitGroup
	errs       chan error
}

// bpMsg is message i of producer id: id<<48|i, then filler.
func bpMsg(id int, i uint64) []byte { return payload(uint64(id)<<48|i, bpSize) }

func bpStart(t *testing.T, url, subject string) *bpRig {
	t.Helper()
	r, _ := newRing(t, ipc.Config{Kind: ipc.MPSC, Producers: 3, Capacity: 8 << 10, MaxMessage: 1024})
	rig := &bpRig{r: r, dropped: map[uint64]bool{}, overflowed: map[uint64]bool{}, errs: make(chan error, 16)}
	var err error
	rig.wait, err = r.Producer(&ipc.ProducerConfig{ID: 1, Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: forever}})
	require.NoError(t, err)
	rig.drop, err = r.Producer(&ipc.ProducerConfig{ID: 2, Full: ipc.Drop})
	require.NoError(t, err)
	rig.over, err = r.Producer(&ipc.ProducerConfig{ID: 3, Overflow: func(msg []byte) error {
		rig.mu.Lock()
		rig.overflowed[binary.BigEndian.Uint64(msg)&(1<<48-1)] = true
		rig.mu.Unlock()
		return nil
	}})
	require.NoError(t, err)
	t.Cleanup(func() { rig.wait.Close(); rig.drop.Close(); rig.over.Close() })

	rig.out, err = bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: url, Subject: subject, Window: bpWindow, ReconnectWait: 20 * time.Millisecond})
	require.NoError(t, err)
	runOut(t, rig.out)
	// Watch the window: it never holds more than Window publishes.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if n := int64(rig.out.Stats().InFlight); n > rig.maxInFlight.Load() {
				rig.maxInFlight.Store(n)
			}
			time.Sleep(time.Millisecond) // a sampling period, not a synchronisation
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return rig
}

// produce writes messages from to to-1 of every producer, each on its own
// goroutine. Only the waiting producer may still be running when it returns
// (it waits for room); the others have finished.
func (rig *bpRig) produce(t *testing.T, from, to uint64) {
	t.Helper()
	rig.wg.Add(1)
	go func() {
		defer rig.wg.Done()
		for i := from; i < to; {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			err := rig.wait.Write(ctx, bpMsg(1, i))
			cancel()
			switch {
			case err == nil:
				i++
			case errors.Is(err, context.DeadlineExceeded):
				rig.deadlines.Add(1) // not written: the producer still has it, and retries
			default:
				rig.errs <- fmt.Errorf("waiting producer, message %d: %w", i, err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := from; i < to; i++ {
			err := rig.drop.Write(context.Background(), bpMsg(2, i))
			switch {
			case errors.Is(err, ipc.ErrFull):
				rig.mu.Lock()
				rig.dropped[i] = true
				rig.mu.Unlock()
			case err != nil:
				rig.errs <- fmt.Errorf("dropping producer, message %d: %w", i, err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := from; i < to; i++ {
			if err := rig.over.Write(context.Background(), bpMsg(3, i)); err != nil {
				rig.errs <- fmt.Errorf("overflowing producer, message %d: %w", i, err)
				return
			}
		}
	}()
	wg.Wait()
	rig.checkErrs(t)
}

func (rig *bpRig) checkErrs(t *testing.T) {
	t.Helper()
	select {
	case err := <-rig.errs:
		require.NoError(t, err)
	default:
	}
}

// waitIdle waits until the ring is empty and the bridge has released n
// messages.
func (rig *bpRig) waitIdle(t *testing.T, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages released", n), func() bool {
		rs, err := rig.r.Stats()
		return err == nil && rs.Depth == 0 && rig.out.Stats().Released == n
	})
}

// waitStalled waits for the chain's end: the waiting producer's writes meet
// their deadline (the ring has no room, the bridge has stopped reading),
// the dropping producer dropped and the overflowing one routed.
func (rig *bpRig) waitStalled(t *testing.T) {
	t.Helper()
	waitFor(t, "the waiting producer to meet a deadline", func() bool { return rig.deadlines.Load() > 0 })
	rs, err := rig.r.Stats()
	require.NoError(t, err)
	require.NotZero(t, rs.FullEvents)
	require.NotZero(t, rs.Overflowed, "the overflow route received")
	rig.mu.Lock()
	defer rig.mu.Unlock()
	require.NotEmpty(t, rig.dropped, "the dropping producer dropped")
	require.NotEmpty(t, rig.overflowed, "the overflow route received")
	require.LessOrEqual(t, rig.maxInFlight.Load(), int64(bpWindow), "the window never exceeds OutConfig.Window")
}

// finish waits for the waiting producer to write its last message and the
// bridge to release everything, and returns how many messages the far end
// must hold.
func (rig *bpRig) finish(t *testing.T) uint64 {
	t.Helper()
	done := make(chan struct{})
	go func() { rig.wg.Wait(); close(done) }()
	waitFor(t, "the waiting producer to finish", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	rig.checkErrs(t)
	rig.mu.Lock()
	want := 3*bpPerProducer - uint64(len(rig.dropped)+len(rig.overflowed))
	rig.mu.Unlock()
	rig.waitIdle(t, want)
	return want
}

// verify checks the far end's messages (tag → times received) against what
// the producers wrote, dropped and overflowed, exactly, and the ring's
// counters against the producers' own counts.
func (rig *bpRig) verify(t *testing.T, got map[uint64]int) {
	t.Helper()
	rig.mu.Lock()
	defer rig.mu.Unlock()
	for tag, n := range got {
		require.Equal(t, 1, n, "message %d of producer %d received %d times", tag&(1<<48-1), tag>>48, n)
	}
	for i := uint64(0); i < bpPerProducer; i++ {
		require.Contains(t, got, uint64(1)<<48|i, "waiting producer's message %d lost", i)
		_, ok := got[uint64(2)<<48|i]
		require.Equal(t, !rig.dropped[i], ok, "dropping producer's message %d: dropped %v, received %v", i, rig.dropped[i], ok)
		_, ok = got[uint64(3)<<48|i]
		require.Equal(t, !rig.overflowed[i], ok, "overflowing producer's message %d: routed %v, received %v", i, rig.overflowed[i], ok)
	}
	require.Len(t, got, 3*bpPerProducer-len(rig.dropped)-len(rig.overflowed))

	rs, err := rig.r.Stats()
	require.NoError(t, err)
	slots := map[int]ipc.SlotStats{}
	for _, s := range rs.Producers {
		slots[s.Slot] = s
	}
	// A write that met its deadline counts as a drop in the ring (the
	// producer gave up on it); this producer wrote it again.
	require.Equal(t, rig.deadlines.Load(), slots[0].Drops, "the waiting producer's deadlines")
	require.EqualValues(t, len(rig.dropped), slots[1].Drops, "the dropping producer's drops")
	require.EqualValues(t, len(rig.overflowed), slots[2].Overflowed, "the overflow route's messages")
	require.EqualValues(t, len(rig.overflowed), rs.Overflowed)
	require.EqualValues(t, 3*bpPerProducer-len(rig.dropped)-len(rig.overflowed), rs.MsgsIn, "messages in the ring")
	st := rig.out.Stats()
	t.Logf("%d messages at the far end, %d dropped, %d overflowed, %d deadlines; bridge %+v; max in flight %d",
		len(got), len(rig.dropped), len(rig.overflowed), rig.deadlines.Load(), st, rig.maxInFlight.Load())
	require.LessOrEqual(t, rig.maxInFlight.Load(), int64(bpWindow))
}

// bpReadStream waits until stream holds n messages and returns them (tag →
// count), read one by one by sequence.
func bpReadStream(t *testing.T, js jetstream.JetStream, stream string, n uint64) map[uint64]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	var state jetstream.StreamState
	waitFor(t, fmt.Sprintf("%d messages in the stream", n), func() bool {
		info, err := s.Info(ctx)
		if err != nil {
			return false
		}
		state = info.State
		return state.Msgs >= n
	})
	require.Equal(t, n, state.Msgs, "messages in the stream")
	got := map[uint64]int{}
	for seq := state.FirstSeq; seq <= state.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(t, err)
		got[binary.BigEndian.Uint64(m.Data)]++
	}
	return got
}

// bpRemote is a remote pull consumer of a work-queue stream.
type bpRemote struct {
	js   jetstream.JetStream
	cons jetstream.Consumer
	held []jetstream.Msg
	cc   jetstream.ConsumeContext

	mu  sync.Mutex
	got map[uint64]int // tag → deliveries
	err error          // the first acknowledgement that failed
}

func bpNewRemote(t *testing.T, js jetstream.JetStream, stream string, maxPending int) *bpRemote {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: "remote", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: maxPending, AckWait: time.Hour,
	})
	require.NoError(t, err)
	return &bpRemote{js: js, cons: cons, got: map[uint64]int{}}
}

// fetchHold takes n deliveries and acknowledges none: MaxAckPending (n) is
// reached, the server delivers no more and the stream keeps everything.
func (rm *bpRemote) fetchHold(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d deliveries", n), func() bool {
		batch, err := rm.cons.Fetch(n-len(rm.held), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return false
		}
		for m := range batch.Messages() {
			rm.held = append(rm.held, m)
			rm.got[binary.BigEndian.Uint64(m.Data())]++
		}
		return len(rm.held) >= n
	})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	info, err := rm.cons.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, n, info.NumAckPending)
}

// resume acknowledges the held deliveries and consumes on (acknowledging
// each) until waitAll.
func (rm *bpRemote) resume(t *testing.T) {
	t.Helper()
	for _, m := range rm.held {
		require.NoError(t, m.DoubleAck(context.Background()))
	}
	rm.held = nil
	cc, err := rm.cons.Consume(func(m jetstream.Msg) {
		rm.mu.Lock()
		rm.got[binary.BigEndian.Uint64(m.Data())]++
		rm.mu.Unlock()
		if err := m.DoubleAck(context.Background()); err != nil {
			rm.mu.Lock()
			rm.err = errors.Join(rm.err, err)
			rm.mu.Unlock()
		}
	})
	require.NoError(t, err)
	rm.cc = cc
	t.Cleanup(cc.Stop)
}

// waitAll waits until n messages in all were received, checks that the
// stream is then empty, and returns them.
func (rm *bpRemote) waitAll(t *testing.T, n uint64) map[uint64]int {
	t.Helper()
	total := func() (s uint64) {
		rm.mu.Lock()
		defer rm.mu.Unlock()
		for _, k := range rm.got {
			s += uint64(k)
		}
		return s
	}
	waitFor(t, fmt.Sprintf("%d messages consumed", n), func() bool { return total() >= n })
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	s, err := rm.js.Stream(ctx, "BPO")
	require.NoError(t, err)
	waitFor(t, "the work queue to empty", func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
	rm.cc.Stop()
	require.Equal(t, n, total(), "messages consumed")
	rm.mu.Lock()
	defer rm.mu.Unlock()
	require.NoError(t, rm.err, "acknowledgements")
	return rm.got
}
