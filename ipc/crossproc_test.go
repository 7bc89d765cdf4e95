package ipc_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// The test binary re-executes itself as a producer or consumer process when
// childEnv is set (os/exec's helperCommand pattern).
const childEnv = "SHMRING_IPC_TEST_CHILD"

func TestMain(m *testing.M) { testutil.MainWithChildren(m, childEnv, runChild) }

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// message fills buf with the deterministic message number seq of a run.
func message(buf []byte, seed, seq, maxSize uint64) []byte {
	h := splitmix(seed ^ seq*0x2545F4914F6CDD1D)
	n := h % (maxSize + 1)
	b := buf[:n]
	x := h
	for i := 0; i+8 <= len(b); i += 8 {
		x = splitmix(x)
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(seq + uint64(i))
	}
	return b
}

type childConf struct {
	path           string
	count, seed    uint64
	maxSize        uint64
	producerPolicy string // how the producer waits: spin, yield, park, hybrid, block (park with a deadline), or "" (the default)
}

// childPeerTimeout is how long the producer and consumer processes of
// TestCrossProcess wait for each other: the other may take seconds to
// start on a loaded machine, and only a stuck test waits a minute (the
// default 1 s made a slow start fail as ErrPeerDead).
const childPeerTimeout = time.Minute

// childWait returns the Strategy that a child's producer and consumer of
// the runs below use for the waiting named s, and whether the producer's
// writes have a deadline (block: park bounded by the context).
func childWait(s string) (ipc.Strategy, bool, error) {
	switch s {
	case "spin":
		return ipc.Spin, false, nil
	case "yield":
		return ipc.Yield, false, nil
	case "park":
		return ipc.Park, false, nil
	case "block":
		return ipc.Park, true, nil
	case "hybrid", "":
		return ipc.Hybrid, false, nil
	}
	return 0, false, fmt.Errorf("unknown waiting %q", s)
}

func (c childConf) env(role string) []string {
	return append(os.Environ(),
		childEnv+"="+role,
		"SHMRING_T_PATH="+c.path,
		"SHMRING_T_COUNT="+strconv.FormatUint(c.count, 10),
		"SHMRING_T_SEED="+strconv.FormatUint(c.seed, 10),
		"SHMRING_T_MAX="+strconv.FormatUint(c.maxSize, 10),
		"SHMRING_T_POLICY="+c.producerPolicy,
	)
}

func runChild(role string) error {
	switch role {
	case "mpsc-producer":
		return mpscProducerChild()
	case "mpsc-consumer":
		return mpscConsumerChild()
	case "idle-consumer", "idle-producer":
		return idleChild(role)
	case "mem":
		return memChild()
	case "access":
		return accessChild()
	case "memfd":
		return memfdChild()
	case "corrupt":
		return corruptChild()
	case "ns-claim":
		return nsClaimChild()
	case "inspect-truncated":
		return inspectTruncatedChild()
	case "hang-in-create":
		return testutil.HangInCreate(os.Getenv("SHMRING_T_PATH"))
	case "gather-dir":
		return gatherDirChild()
	case "hole-punch":
		return holePunchChild()
	case "hc-batch-producer":
		return hcBatchProducerChild()
	case "hold-producer":
		return holdProducerChild()
	case "held-consumer":
		return heldConsumerChild()
	}
	u := func(k string) uint64 { v, _ := strconv.ParseUint(os.Getenv(k), 10, 64); return v }
	c := childConf{path: os.Getenv("SHMRING_T_PATH"), count: u("SHMRING_T_COUNT"), seed: u("SHMRING_T_SEED"), maxSize: u("SHMRING_T_MAX")}
	r, err := ipc.Open(c.path)
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, c.maxSize)
	sum := crc64.New(crc64.MakeTable(crc64.ECMA))
	var bytes uint64
	switch role {
	case "producer":
		strategy, deadline, err := childWait(os.Getenv("SHMRING_T_POLICY"))
		if err != nil {
			return err
		}
		p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: strategy, PeerTimeout: childPeerTimeout}})
		if err != nil {
			return err
		}
		for seq := uint64(0); seq < c.count; seq++ {
			m := message(buf, c.seed, seq, c.maxSize)
			if err := produce(p, m, seq%3 == 0, deadline); err != nil {
				return fmt.Errorf("write %d: %w", seq, err)
			}
			sum.Write(m)
			bytes += uint64(len(m))
		}
		fmt.Printf("producer %d %d %x\n", c.count, bytes, sum.Sum64())
		return p.Close()
	case "consumer":
		// The consumer waits as the producer does, except that a
		// spinning producer's consumer waits the default way.
		ccfg := &ipc.ConsumerConfig{Wait: ipc.Wait{PeerTimeout: childPeerTimeout}}
		if pol := os.Getenv("SHMRING_T_POLICY"); pol != "spin" {
			strategy, _, err := childWait(pol)
			if err != nil {
				return err
			}
			ccfg.Wait.Strategy = strategy
		}
		cons, err := r.Consumer(ccfg)
		if err != nil {
			return err
		}
		var seq uint64
		var bad error
		for seq < c.count && bad == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := cons.Read(ctx, 256, func(got []byte) {
				want := message(buf, c.seed, seq, c.maxSize)
				if bad == nil && string(got) != string(want) {
					bad = fmt.Errorf("message %d: got %d bytes, want %d, or content differs", seq, len(got), len(want))
				}
				sum.Write(got)
				bytes += uint64(len(got))
				seq++
			})
			cancel()
			if err != nil {
				return fmt.Errorf("after %d messages: %w", seq, err)
			}
		}
		if bad != nil {
			return bad
		}
		fmt.Printf("consumer %d %d %x\n", seq, bytes, sum.Sum64())
		return cons.Close()
	}
	return fmt.Errorf("unknown role %q", role)
}

// produce writes m with Write, or with Claim and Commit; with deadline,
// the write waits for room up to a minute of its own (block: what the old
// WithTimeout gave each write).
func produce(p *ipc.Producer, m []byte, claim, deadline bool) error {
	ctx := context.Background()
	if deadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	if !claim {
		return p.Write(ctx, m)
	}
	b, err := p.Claim(ctx, len(m))
	if err != nil {
		return err
	}
	copy(b, m)
	return p.Commit(len(m))
}

func startChild(t *testing.T, conf childConf, role string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = conf.env(role)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

// TestCrossProcess moves messages of random sizes between a producer process
// and a consumer process, each the test binary re-executed, and checks that
// every message arrives complete, in order and byte-exact (each is compared
// with its regenerated original, and both sides' CRC-64 of the whole stream
// must agree). Ten million messages; one million under -race.
func TestCrossProcess(t *testing.T) {
	count := uint64(10_000_000)
	if raceEnabled {
		count = 1_000_000
	}
	if testing.Short() {
		count = 200_000
	}
	for _, tc := range []struct {
		name      string
		capacity  uint64
		maxSize   uint64
		policy    string
		near2to64 bool
		cfg       ipc.Config
		override  ops.Policy // the producers' wait-mode override in the segment (0: none)
	}{
		{"spin", 1 << 16, 256, "spin", false, ipc.Config{}, 0},
		// Backoff is no longer a producer's own choice, but an override
		// (ringctl policy) still makes producers back off: the producer
		// process waits the default way and follows it.
		{"backoff-small-ring", 1 << 12, 512, "", false, ipc.Config{}, ops.Backoff},
		{"positions-through-2^64", 1 << 12, 256, "spin", true, ipc.Config{}, 0},
		// The consumer finds records by their headers: small ring, wraps.
		{"header-commit", 1 << 12, 512, "spin", false, ipc.Config{HeaderCommit: true}, 0},
		{"header-commit-through-2^64", 1 << 12, 256, "hybrid", true, ipc.Config{HeaderCommit: true}, 0},
		// Every way of waiting across processes (the consumer waits the
		// same way), on a small ring so that both sides wait. Block is
		// park with a context deadline.
		{"policy-yield", 1 << 12, 256, "yield", false, ipc.Config{}, 0},
		{"policy-park", 1 << 12, 256, "park", false, ipc.Config{}, 0},
		{"policy-block", 1 << 12, 256, "block", false, ipc.Config{}, 0},
		{"policy-hybrid", 1 << 12, 256, "hybrid", false, ipc.Config{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := count
			if tc.name != "spin" {
				n = count / 10
			}
			if strings.HasPrefix(tc.name, "policy-") {
				n = count / 50
			}
			name := testutil.Name(t)
			cfg := tc.cfg
			cfg.Capacity, cfg.MaxMessage = tc.capacity, tc.maxSize
			r, err := ipc.Create(name, cfg)
			require.NoError(t, err)
			defer r.Close()
			if tc.override != 0 {
				require.NoError(t, ops.SetPolicy(r, tc.override, 0))
			}
			if tc.near2to64 {
				// Test-only hook: start both positions 16 KiB below 2^64,
				// before any producer or consumer exists.
				startPositions(t, r.Path(), ^uint64(0)-1<<14+1)
			}
			conf := childConf{path: r.Path(), count: n, seed: uint64(time.Now().UnixNano()), maxSize: tc.maxSize, producerPolicy: tc.policy}
			start := time.Now()
			ccmd, cout := startChild(t, conf, "consumer")
			pcmd, pout := startChild(t, conf, "producer")
			require.True(t, pout.Scan(), "producer printed nothing")
			pline := pout.Text()
			require.True(t, cout.Scan(), "consumer printed nothing")
			cline := cout.Text()
			require.NoError(t, pcmd.Wait())
			require.NoError(t, ccmd.Wait())
			elapsed := time.Since(start)
			require.Equal(t, strings.TrimPrefix(pline, "producer "), strings.TrimPrefix(cline, "consumer "))
			st, err := r.Stats()
			require.NoError(t, err)
			if tc.near2to64 {
				require.Less(t, st.ProducerPos, uint64(1)<<40, "positions wrapped through 2^64")
			}
			require.Equal(t, n, st.MsgsIn)
			require.Equal(t, n, st.MsgsOut)
			require.Equal(t, st.BytesIn, st.BytesOut)
			require.Zero(t, st.Depth)
			require.False(t, st.ProducerAttached)
			require.False(t, st.ConsumerAttached)
			t.Logf("%d messages (seed %d) in %v: %.1f M msgs/s; full events %d, high water %d of %d",
				n, conf.seed, elapsed, float64(n)/elapsed.Seconds()/1e6, st.FullEvents, st.HighWater, st.Capacity)
		})
	}
}

// startPositions sets both ring positions of a fresh segment to pos by
// writing the file, as a test-only hook.
func startPositions(t *testing.T, path string, pos uint64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], pos)
	for _, line := range []int64{ring.ProducerLine, ring.ConsumerLine} {
		_, err := f.WriteAt(b[:], shm.HeaderSize+line)
		require.NoError(t, err)
	}
}
