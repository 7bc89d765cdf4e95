package ipc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// buildRingC compiles testdata/ringread.c, a producer and consumer written
// from docs/layout.md alone, with the machine's C compiler.
func buildRingC(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) on PATH: the layout document is not checked from C")
	}
	bin := filepath.Join(t.TempDir(), "ringread")
	out, err := exec.Command(cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", bin, "testdata/ringread.c").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestLayoutReadFromC has the C program drain a ring that Go writes, through
// a wrap with padding, in its original mode (what is pending now).
func TestLayoutReadFromC(t *testing.T) {
	bin := buildRingC(t)
	t.Run("plain", func(t *testing.T) { readFromC(t, bin, ipc.Config{}) })
	t.Run("header-commit", func(t *testing.T) { readFromC(t, bin, ipc.Config{HeaderCommit: true}) })
	t.Run("refuses-mpsc", func(t *testing.T) {
		r := newRing(t, ipc.Config{Kind: ipc.MPSC})
		out, err := exec.Command(bin, r.Path()).CombinedOutput()
		require.Error(t, err)
		require.Contains(t, string(out), "kind not spsc")
	})
}

func readFromC(t *testing.T, bin string, cfg ipc.Config) {
	cfg.Capacity, cfg.MaxMessage = 1<<10, 100
	r := newRing(t, cfg)
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	require.NoError(t, err)
	defer p.Close()
	seq := 0
	for round := 0; round < 5; round++ {
		var want []string
		for {
			msg := fmt.Sprintf("round %d message %d %s", round, seq, strings.Repeat("x", seq%60))
			if err := p.Write(context.Background(), []byte(msg)); err != nil {
				require.ErrorIs(t, err, ipc.ErrFull)
				break
			}
			want = append(want, msg)
			seq++
		}
		got, err := exec.Command(bin, r.Path()).Output()
		require.NoError(t, err)
		require.Equal(t, strings.Join(want, "\n")+"\n", string(got), "round %d", round)
	}
	st, err := r.Stats()
	require.NoError(t, err)
	require.Zero(t, st.Depth, "the C reader released everything")
	require.Greater(t, st.ProducerPos, 4*st.Capacity, "the ring wrapped several times")
}

// cKind is one ring kind the C program must read and write.
type cKind struct {
	name       string
	cfg        ipc.Config
	mpsc       bool
	dropOldest bool
}

func cKinds() []cKind {
	kinds := []cKind{
		{name: "spsc"},
		{name: "header-commit", cfg: ipc.Config{HeaderCommit: true}},
		{name: "drop-oldest-spsc", cfg: ipc.Config{DropOldest: true}, dropOldest: true},
		{name: "mpsc", cfg: ipc.Config{Kind: ipc.MPSC, Producers: 4}, mpsc: true},
		{name: "drop-oldest-mpsc", cfg: ipc.Config{Kind: ipc.MPSC, Producers: 4, DropOldest: true}, mpsc: true, dropOldest: true},
	}
	var out []cKind
	for _, k := range kinds {
		for _, x := range []struct {
			name    string
			ts, seq bool
		}{
			{"", false, false},
			{"+ts", true, false},
			{"+seq", false, true},
			{"+ts+seq", true, true},
		} {
			cfg := k.cfg
			cfg.Timestamps, cfg.Sequences = x.ts, x.seq
			out = append(out, cKind{name: k.name + x.name, cfg: cfg, mpsc: k.mpsc, dropOldest: k.dropOldest})
		}
	}
	return out
}

// cMessage is message k of the producer tagged tag, as ringread.c writes it:
// "TAG k " and k%61 filler letters.
func cMessage(tag string, k int) string {
	b := []byte(fmt.Sprintf("%s %d ", tag, k))
	for j := 0; j < k%61; j++ {
		b = append(b, byte('a'+(k+j)%26))
	}
	return string(b)
}

// parseCMessage checks that msg is a whole cMessage and returns its tag and k.
func parseCMessage(msg string) (string, int, error) {
	f := strings.SplitN(msg, " ", 3)
	if len(f) != 3 {
		return "", 0, fmt.Errorf("message %q is not \"TAG k filler\"", msg)
	}
	k, err := strconv.Atoi(f[1])
	if err != nil || cMessage(f[0], k) != msg {
		return "", 0, fmt.Errorf("message %q is torn or altered", msg)
	}
	return f[0], k, nil
}

// waitForCond polls cond until it holds; the deadline only ends a stuck
// test (a minute: the C program's own alarm).
func waitForCond(what string, cond func() bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// TestLayoutFromC runs the C program, written from docs/layout.md, as a real
// separate process against every ring kind, with and without timestamps and
// sequences, in both directions: it produces messages that the Go consumer
// reads intact (in MPSC rings alongside a Go producer), and it consumes what
// Go producers write. Each message carries its producer's tag and number and
// a filler derived from them, and each direction moves several times the
// capacity, so records wrap.
func TestLayoutFromC(t *testing.T) {
	bin := buildRingC(t)
	for _, k := range cKinds() {
		t.Run(k.name+"/c-writes", func(t *testing.T) { cWrites(t, bin, k) })
		t.Run(k.name+"/c-reads", func(t *testing.T) { cReads(t, bin, k) })
	}
}

const (
	cCapacity = 1 << 12
	cMaxMsg   = 128
	cCount    = 1200 // messages per producer: about 20 times the capacity
)

func cWrites(t *testing.T, bin string, k cKind) {
	cfg := k.cfg
	cfg.Capacity, cfg.MaxMessage = cCapacity, cMaxMsg
	r := newRing(t, cfg)
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)
	defer c.Close()

	// ctx ends when the producers are done; kill ends the C processes if
	// the consumer fails (then closing the consumer makes the Go producer
	// give up: no consumer), so that nothing runs on the ring once the test
	// returns, whatever happens.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kill, killNow := context.WithCancel(t.Context())
	defer killNow()
	var wg sync.WaitGroup
	var cOut [2][]byte
	var cErr [2]error
	var goErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel() // the consumer drains what is left and stops
		var pwg sync.WaitGroup
		if k.mpsc {
			pwg.Add(1)
			go func() {
				defer pwg.Done()
				pcfg := &ipc.ProducerConfig{} // Hybrid
				if k.dropOldest {
					pcfg.Full = ipc.DropOldest
				}
				p, err := r.Producer(pcfg)
				if err != nil {
					goErr = err
					return
				}
				defer p.Close()
				for i := 0; i < cCount; i++ {
					if err := p.Write(context.Background(), []byte(cMessage("g", i))); err != nil && !(k.dropOldest && errors.Is(err, ipc.ErrFull)) {
						goErr = err
						return
					}
				}
			}()
		}
		// Two processes, one after the other: the second resumes the
		// first's positions, slot and sequence numbers, and waits at its
		// half-way point for the Go consumer to park, so that its next
		// write must wake it.
		cOut[0], cErr[0] = exec.CommandContext(kill, bin, "write", r.Path(), "c", "0", strconv.Itoa(cCount/2)).CombinedOutput()
		if cErr[0] == nil {
			cOut[1], cErr[1] = exec.CommandContext(kill, bin, "write", r.Path(), "c", strconv.Itoa(cCount/2), strconv.Itoa(cCount-cCount/2), "gate").CombinedOutput()
		}
		pwg.Wait()
	}()

	got := map[string][]int{}
	delivered := 0
	var readErr error
	fn := func(msg []byte) {
		tag, n, err := parseCMessage(string(msg))
		if err != nil && readErr == nil {
			readErr = err
		}
		got[tag] = append(got[tag], n)
		delivered++
	}
	var consumeErr error
	if !k.dropOldest {
		// Let the C producer fill the ring and park first: reading now
		// must wake it.
		consumeErr = waitForCond("a producer to park on the full ring", func() bool {
			st, err := r.Stats()
			return err == nil && st.ProducerParks > 0 || ctx.Err() != nil
		})
	}
	for consumeErr == nil {
		_, err := c.Read(ctx, 64, fn)
		if ctx.Err() != nil {
			break
		}
		consumeErr = err
	}
	for consumeErr == nil {
		n, err := c.TryRead(64, fn)
		if consumeErr = err; n == 0 {
			break
		}
	}
	if consumeErr != nil {
		killNow()
		_ = c.Close()
	}
	wg.Wait()
	require.NoError(t, consumeErr)
	require.NoError(t, cErr[0], "first C producer: %s", cOut[0])
	require.NoError(t, cErr[1], "second C producer: %s", cOut[1])
	require.NoError(t, goErr)
	require.NoError(t, readErr)

	st, err := r.Stats()
	require.NoError(t, err)
	written := cCount
	tags := []string{"c"}
	if k.mpsc {
		written += cCount
		tags = append(tags, "g")
	}
	for _, tag := range tags {
		if k.dropOldest {
			for i := 1; i < len(got[tag]); i++ {
				require.Greater(t, got[tag][i], got[tag][i-1], "producer %s: messages out of order", tag)
			}
		} else {
			want := make([]int, cCount)
			for i := range want {
				want[i] = i
			}
			require.Equal(t, want, got[tag], "producer %s: every message once, in order", tag)
		}
	}
	if k.dropOldest {
		require.Equal(t, uint64(written), uint64(delivered)+st.Drops, "each message delivered or counted dropped, never both")
	} else {
		require.Equal(t, uint64(written), st.MsgsIn, "the C producer counts its messages")
		require.Zero(t, st.Drops)
	}
	require.Equal(t, uint64(delivered), st.MsgsOut)
	require.Zero(t, st.Duplicates, "the second C producer resumed the sequence numbers")
	require.Zero(t, st.Lost)
	require.Zero(t, st.Depth)
	require.Greater(t, st.ProducerPos, 8*st.Capacity, "records wrapped")
	require.Positive(t, st.ConsumerWakeups, "the C producer woke the parked Go consumer")
	if !k.dropOldest {
		require.Positive(t, st.ProducerWakeups, "the Go consumer woke the parked C producer")
	}
	if st.Timestamps {
		require.Equal(t, uint64(delivered), st.DelayCount)
		require.Positive(t, st.DelaySum, "the C producer stamps CLOCK_MONOTONIC")
		for b := 40; b < len(st.DelayBuckets); b++ {
			require.Zero(t, st.DelayBuckets[b], "a delay of 2^%d ns: a timestamp from another clock", b)
		}
	}
	if st.Sequences && k.mpsc {
		// A slot numbers its records 1, 2, ... across its holders (the two
		// C processes, or a Go producer and a C process that took its slot
		// after it closed): each record committed is one message in.
		for i := 0; i < st.Slots; i++ {
			sl, err := ops.Slot(r, i)
			require.NoError(t, err)
			require.Equal(t, sl.MsgsIn, sl.LastSeq, "slot %d: last sequence committed", i)
		}
	}
	if k.mpsc {
		// Taking a slot, step 2: every holder records its PID namespace
		// (+120) with its PID, the C producers as the Go one (this test's
		// processes share its namespace).
		seg, err := os.ReadFile(r.Path())
		require.NoError(t, err)
		for i := 0; i < st.Slots; i++ {
			slot := seg[4096+4096+128*i:]
			if binary.LittleEndian.Uint64(slot) == 0 {
				continue // never held
			}
			require.Equal(t, proc.PIDNamespace(), binary.LittleEndian.Uint64(slot[120:]), "slot %d: the PID namespace its holder recorded", i)
		}
	}
}

func cReads(t *testing.T, bin string, k cKind) {
	ctx := context.Background()
	cfg := k.cfg
	cfg.Capacity, cfg.MaxMessage = cCapacity, cMaxMsg
	r := newRing(t, cfg)
	rst, err := r.Stats()
	require.NoError(t, err)
	sequences := rst.Sequences
	nprod := 1
	if k.mpsc {
		nprod = 2
	}
	pcfg := &ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park}}
	if k.dropOldest {
		pcfg = &ipc.ProducerConfig{Full: ipc.DropOldest}
	}
	var prods []*ipc.Producer
	for i := 0; i < nprod; i++ {
		p, err := r.Producer(pcfg)
		require.NoError(t, err)
		defer p.Close()
		prods = append(prods, p)
	}
	args := []string{"read", r.Path(), "FIN"}
	if !k.dropOldest {
		args = append(args, "gate") // read only once a producer parked: the C consumer must wake it
	}
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	waited := false
	defer func() { // a test that fails first kills and reaps the C consumer
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	// The producers need not wait for the consumer: with none attached for
	// their peer timeout they give up with ErrPeerDead, which fails the test.

	var wg sync.WaitGroup
	errs := make([]error, nprod)
	for i, p := range prods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < cCount; n++ {
				if err := p.Write(ctx, []byte(cMessage(fmt.Sprintf("g%d", i), n))); err != nil && !(k.dropOldest && errors.Is(err, ipc.ErrFull)) {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	// The last message of all: never reclaimed, so the C consumer sees it.
	require.NoError(t, prods[0].Write(ctx, []byte("FIN")))
	err = cmd.Wait()
	waited = true
	require.NoError(t, err, "C consumer: %s", stderr.String())

	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	require.NotEmpty(t, lines)
	seqOf := func(line string) (uint64, string) {
		if !sequences {
			return 0, line
		}
		s, rest, ok := strings.Cut(line, " ")
		require.True(t, ok, "line %q has no sequence", line)
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return n, rest
	}
	_, last := seqOf(lines[len(lines)-1])
	require.Equal(t, "FIN", last)
	got := map[string][]int{}
	seqs := map[string][]uint64{}
	for _, line := range lines[:len(lines)-1] {
		s, msg := seqOf(line)
		tag, n, err := parseCMessage(msg)
		require.NoError(t, err)
		got[tag] = append(got[tag], n)
		seqs[tag] = append(seqs[tag], s)
	}
	st, err := r.Stats()
	require.NoError(t, err)
	for i := 0; i < nprod; i++ {
		tag := fmt.Sprintf("g%d", i)
		if k.dropOldest {
			for j := 1; j < len(got[tag]); j++ {
				require.Greater(t, got[tag][j], got[tag][j-1], "producer %s: messages out of order", tag)
				if sequences {
					require.Greater(t, seqs[tag][j], seqs[tag][j-1], "producer %s: sequences out of order", tag)
				}
			}
			continue
		}
		want := make([]int, cCount)
		wantSeq := make([]uint64, cCount)
		for j := range want {
			want[j], wantSeq[j] = j, uint64(j+1)
		}
		require.Equal(t, want, got[tag], "producer %s: every message once, in order", tag)
		if sequences {
			require.Equal(t, wantSeq, seqs[tag], "producer %s: sequences 1, 2, ...", tag)
		}
	}
	written := uint64(nprod*cCount + 1)
	if k.dropOldest {
		require.Equal(t, written, uint64(len(lines))+st.Drops, "each message delivered or counted dropped, never both")
	} else {
		require.Equal(t, written, uint64(len(lines)))
		require.Positive(t, st.ProducerWakeups, "the C consumer woke the parked Go producers")
	}
	require.Equal(t, uint64(len(lines)), st.MsgsOut, "the C consumer counts what it delivers")
	if sequences {
		// The C consumer remembers the last sequence it delivered from each
		// producer (slot +104, or region 560 in SPSC): FIN is the last of
		// producer 0, and in rings that drop nothing every producer's last
		// record was delivered.
		if k.mpsc {
			for i, p := range prods {
				slot := slotOf(t, p)
				sl, err := ops.Slot(r, slot)
				require.NoError(t, err)
				if i == 0 || !k.dropOldest {
					require.Equal(t, sl.LastSeq, sl.DelivSeq, "slot %d: last sequence delivered", slot)
				}
			}
		} else {
			seg, err := os.ReadFile(r.Path())
			require.NoError(t, err)
			ps, err := prods[0].Stats()
			require.NoError(t, err)
			require.Equal(t, ps.NextSeq-1, binary.LittleEndian.Uint64(seg[4096+560:]), "region 560: last sequence delivered")
		}
	}
	require.Zero(t, st.Depth, "the C consumer released everything")
	require.Greater(t, st.ProducerPos, 8*st.Capacity, "records wrapped")
}
