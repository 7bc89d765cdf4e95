package ipc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestConsumerOpenOnDamage: opening a consumer on a ring whose producer
// position was moved ahead returns ErrCorrupt (it panicked in its deferred
// cleanup, issue 12 defect 2) and releases the consumer role: once the
// position is repaired, a consumer opens.
func TestConsumerOpenOnDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ipc.Config
	}{
		{"spsc", ipc.Config{}},
		{"header-commit", ipc.Config{HeaderCommit: true}},
		{"mpsc", ipc.Config{Kind: ipc.MPSC, Producers: 2}},
		{"mpsc-drop-oldest", ipc.Config{Kind: ipc.MPSC, Producers: 2, DropOldest: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Capacity = 1 << 12
			r, err := ipc.Create(testutil.Name(t), cfg)
			require.NoError(t, err)
			defer r.Close()
			p, err := r.Producer(nil)
			require.NoError(t, err)
			require.NoError(t, p.Write(context.Background(), []byte("hello")))
			require.NoError(t, p.Close())
			good := testutil.RingWord(t, r.Path(), ring.ProducerLine)
			for _, bad := range []uint64{good + 1<<20, good + 3, good - 1<<20} {
				testutil.SetRingWord(t, r.Path(), ring.ProducerLine, bad)
				c, err := r.Consumer(nil)
				require.ErrorIs(t, err, ipc.ErrCorrupt, "producer position %d", bad)
				require.Nil(t, c)
			}
			testutil.SetRingWord(t, r.Path(), ring.ProducerLine, good)
			c, err := r.Consumer(nil)
			require.NoError(t, err, "the failed opens released the consumer role")
			var got string
			n, err := c.TryRead(1, func(m []byte) { got = string(m) })
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.Equal(t, "hello", got)
			require.NoError(t, c.Close())
		})
	}
}

// TestHeaderCommitDeadProducerState: a header-commit producer that commits
// records and dies before its position store leaves the consumer, once it
// has read them, past the producer position (docs/layout.md,
// "Header-commit rings"). The segment is made as such a death leaves it:
// records written and read for real, then the producer position stored
// back to where the dead producer last stored it. Every reader accepts the
// state: a new consumer, Stats, ops' Peek and Doctor (with and without
// repair); and
// a new producer resumes after the records (issue 12, defect 3).
func TestHeaderCommitDeadProducerState(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1 << 12, MaxMessage: 256, HeaderCommit: true})
	require.NoError(t, err)
	defer r.Close()
	ctx := context.Background()
	p, err := r.Producer(nil)
	require.NoError(t, err)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	require.NoError(t, p.Write(ctx, []byte("first")))
	_, err = c.TryRead(10, func([]byte) {})
	require.NoError(t, err)
	stored := testutil.RingWord(t, r.Path(), ring.ProducerLine)
	msgs := make([][]byte, 20)
	for i := range msgs {
		msgs[i] = make([]byte, 150)
		msgs[i][0] = byte(i)
	}
	n, err := p.WriteBatch(ctx, msgs) // 20 x 160 bytes: 3200, under capacity-8
	require.NoError(t, err)
	require.Equal(t, len(msgs), n)
	require.NoError(t, p.Close())
	got := 0
	n, err = c.TryRead(100, func(m []byte) {
		require.Equal(t, byte(got), m[0])
		got++
	})
	require.NoError(t, err)
	require.Equal(t, 20, n)
	require.NoError(t, c.Close())
	cpos := testutil.RingWord(t, r.Path(), ring.ConsumerLine)
	testutil.SetRingWord(t, r.Path(), ring.ProducerLine, stored) // the batch's position store never happened
	require.Equal(t, uint64(20*160), cpos-stored)

	st, err := r.Stats()
	require.NoError(t, err)
	require.Zero(t, st.Depth)
	recs, err := ops.Peek(r, 100)
	require.NoError(t, err, "peek")
	require.Empty(t, recs)
	for _, repair := range []bool{false, true} {
		d, err := ops.Doctor(r, repair)
		require.NoError(t, err)
		require.True(t, d.Healthy(), "doctor (repair %v): %v", repair, d.Problems)
		require.Zero(t, d.Pending)
	}
	c, err = r.Consumer(nil)
	require.NoError(t, err, "a consumer opens")
	defer c.Close()
	p, err = r.Producer(nil)
	require.NoError(t, err, "a producer opens")
	defer p.Close()
	require.Equal(t, cpos, testutil.RingWord(t, r.Path(), ring.ProducerLine), "it resumed after the dead producer's records")
	require.NoError(t, p.Write(ctx, []byte("after")))
	var last string
	n, err = c.TryRead(100, func(m []byte) { last = string(m) })
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, "after", last)

	// Records committed but not yet read, past the stored position: Peek
	// and Doctor show them as the consumer will read them.
	require.NoError(t, p.Write(ctx, []byte("one")))
	stored = testutil.RingWord(t, r.Path(), ring.ProducerLine)
	n, err = p.WriteBatch(ctx, [][]byte{[]byte("two"), []byte("three")})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	testutil.SetRingWord(t, r.Path(), ring.ProducerLine, stored)
	recs, err = ops.Peek(r, 100)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, "three", string(recs[2].Data))
	d, err := ops.Doctor(r, false)
	require.NoError(t, err)
	require.True(t, d.Healthy(), "%v", d.Problems)
	require.Equal(t, 3, d.Pending)
}

// hcMsg is message i of hcBatchProducerChild: byte i, then bytes i^0x5a.
func hcMsg(i int) []byte {
	m := bytes.Repeat([]byte{byte(i) ^ 0x5a}, 1+(i*37)%200)
	m[0] = byte(i)
	return m
}

// hcBatchProducerChild writes batches of hcMsg 0 to 63 into the
// header-commit ring at SHMRING_T_PATH until it is killed.
func hcBatchProducerChild() error {
	r, err := ipc.Open(os.Getenv("SHMRING_T_PATH"))
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Spin, PeerTimeout: time.Minute}})
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Println("ready")
	msgs := make([][]byte, 64) // made once: the producer spends its time in WriteBatch
	for i := range msgs {
		msgs[i] = hcMsg(i)
	}
	ctx := context.Background()
	for {
		if _, err := p.WriteBatch(ctx, msgs); err != nil {
			return err
		}
	}
}

// TestHeaderCommitProducerKilled: the producer of a header-commit ring,
// a process writing batches, is SIGKILLed at random moments while this
// process reads; a kill that lands between a batch's commits and its
// position store leaves the consumer past the producer position (a real
// death, as issue 12 defect 3 reports it). After every kill, whatever
// state it left: every message read is whole, Stats and ops' Peek and
// Doctor accept the ring, a new consumer opens, and the next producer resumes.
// How many kills left the consumer past the producer position is logged
// (it depends on where each kill lands; TestHeaderCommitDeadProducerState
// and ring's TestHeaderCommitDeadProducerIPC make that state every time).
func TestHeaderCommitProducerKilled(t *testing.T) {
	kills := 20
	if testing.Short() {
		kills = 8
	}
	const capacity = 1 << 13
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: capacity, MaxMessage: 256, HeaderCommit: true})
	require.NoError(t, err)
	defer r.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	var bad error
	var got atomic.Int64   // the reader goroutine counts, the killer watches
	fn := func(m []byte) { // cheap, so that the reader keeps up and the producer is killed mid-batch
		got.Add(1)
		if bad == nil && (len(m) == 0 || m[0] >= 64 || len(m) != 1+(int(m[0])*37)%200 || m[len(m)-1] != m[0]^0x5a && len(m) > 1) {
			if string(m) != "last" {
				bad = fmt.Errorf("message %x is torn", m)
			}
		}
	}
	past := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	for k := 0; k < kills; k++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=hc-batch-producer", "SHMRING_T_PATH="+r.Path())
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("kill %d: the producer did not start: %q, %v", k, line, err)
		}
		// Read while the producer writes, and kill it meanwhile.
		stop, done := make(chan struct{}), make(chan error)
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if _, err := c.TryRead(64, fn); err != nil {
					done <- err
					return
				}
			}
		}()
		before := got.Load()
		deadline := time.Now().Add(time.Minute)
		for got.Load() == before && time.Now().Before(deadline) { // the producer writes
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		close(stop)
		require.NoError(t, <-done)
		_, err = c.TryRead(1<<20, fn) // what the dead producer committed
		require.NoError(t, err)
		require.NoError(t, bad)

		st, err := r.Stats()
		require.NoError(t, err, "kill %d", k)
		if ahead := st.ConsumerPos - st.ProducerPos; ahead != 0 && ahead <= capacity-8 {
			past++
		}
		_, err = ops.Peek(r, 1<<20)
		require.NoError(t, err, "kill %d: peek", k)
		d, err := ops.Doctor(r, false)
		require.NoError(t, err, "kill %d", k)
		require.True(t, d.Healthy(), "kill %d: %v", k, d.Problems)
		require.NoError(t, c.Close())
		c, err = r.Consumer(nil)
		require.NoError(t, err, "kill %d: a new consumer", k)
	}
	p, err := r.Producer(nil)
	require.NoError(t, err, "a last producer resumes")
	require.NoError(t, p.Write(context.Background(), []byte("last")))
	require.NoError(t, p.Close())
	var last string
	for last != "last" {
		n, err := c.TryRead(64, func(m []byte) { fn(m); last = string(m) })
		require.NoError(t, err)
		require.NotZero(t, n, "the last message arrives")
	}
	require.NoError(t, bad)
	t.Logf("%d kills, %d messages; %d kills left the consumer past the producer position", kills, got.Load(), past)
}
