package ipc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
)

// holdProducerChild writes SHMRING_T_COUNT messages cMessage(TAG, k) into
// the ring at SHMRING_T_PATH, as producer SHMRING_T_ID, waiting (parked)
// for room for as long as a consumer comes back within a minute.
func holdProducerChild() error {
	r, err := ipc.Open(os.Getenv("SHMRING_T_PATH"))
	if err != nil {
		return err
	}
	defer r.Close()
	id, _ := strconv.Atoi(os.Getenv("SHMRING_T_ID"))
	count, _ := strconv.Atoi(os.Getenv("SHMRING_T_COUNT"))
	tag := os.Getenv("SHMRING_T_TAG")
	p, err := r.Producer(&ipc.ProducerConfig{ID: id, Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Minute}})
	if err != nil {
		return err
	}
	defer p.Close()
	for k := 0; k < count; k++ {
		if err := p.Write(context.Background(), []byte(cMessage(tag, k))); err != nil {
			return fmt.Errorf("producer %s, message %d: %w", tag, k, err)
		}
	}
	return nil
}

// heldConsumerChild is a held consumer that reads batches of random sizes
// and releases random prefixes of what it holds, printing, after "ready":
// "D tag k" for each message delivered, "I tag:k ..." (the last message of
// each producer a release includes) before each Release and "R" after it,
// flushed before and after each Release, so that the parent knows what was
// surely released (an I followed by R) and what maybe (an I alone). With
// SHMRING_T_DIE=self it SIGKILLs itself at a random point: inside a loop
// body, after a loop (holding what it read), or right after a Release,
// before printing R. With SHMRING_T_DIE=drain it releases everything it
// reads (the parent kills it once the ring is empty).
func heldConsumerChild() error {
	const idleExit = 2 * time.Second
	r, err := ipc.Open(os.Getenv("SHMRING_T_PATH"))
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Hold: true, Wait: ipc.Wait{PeerTimeout: time.Minute}})
	if err != nil {
		return err
	}
	defer c.Close()
	seed, _ := strconv.ParseUint(os.Getenv("SHMRING_T_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 15))
	die, drain := os.Getenv("SHMRING_T_DIE") == "self", os.Getenv("SHMRING_T_DIE") == "drain"
	dieOp, dieWhere := 1+rng.IntN(30), rng.IntN(3)
	kill := func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	_ = out.Flush()
	type held struct {
		tag string
		k   int
		pos uint64
	}
	var hold []held
	for op := 1; ; op++ {
		dying := die && op == dieOp
		max := 1 + rng.IntN(32)
		dieAt := rng.IntN(max)
		// A consumer that finds nothing for a while (the producers are
		// done and the ring is drained as far as this one goes) exits:
		// the parent starts the next or ends the test.
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if !drain {
			ctx, cancel = context.WithTimeout(ctx, idleExit)
		}
		err := func() error {
			defer cancel()
			i := 0
			for rec, err := range c.Batch(ctx, max) {
				if err != nil {
					return err
				}
				tag, k, err := parseCMessage(string(rec.Data))
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "D %s %d\n", tag, k)
				hold = append(hold, held{tag, k, rec.Pos})
				if dying && dieWhere == 0 && i == dieAt {
					_ = out.Flush()
					kill()
				}
				i++
			}
			return nil
		}()
		if errors.Is(err, context.DeadlineExceeded) {
			_ = out.Flush()
			return nil
		} else if err != nil {
			return err
		}
		if dying && dieWhere == 1 {
			_ = out.Flush()
			kill()
		}
		if dying && dieWhere == 2 && len(hold) == 0 {
			dieOp++ // nothing to release yet: die at the next release
		}
		// Release now and then, and always before what is held fills the
		// ring (about 70 messages), which would stop the producers.
		full := len(hold) > 30
		if len(hold) == 0 || (!drain && !full && !(dying && dieWhere == 2) && rng.IntN(2) == 0) {
			continue
		}
		j := len(hold)
		if !drain {
			j = 1 + rng.IntN(len(hold))
			if full {
				j = 1 + len(hold)/2 + rng.IntN(len(hold)-len(hold)/2)
			}
		}
		last := map[string]int{}
		for _, h := range hold[:j] {
			last[h.tag] = h.k
		}
		fmt.Fprint(out, "I")
		for tag, k := range last {
			fmt.Fprintf(out, " %s:%d", tag, k)
		}
		fmt.Fprintln(out)
		_ = out.Flush()
		if err := c.Release(hold[j-1].pos); err != nil {
			return err
		}
		if dying && dieWhere == 2 {
			kill()
		}
		fmt.Fprintln(out, "R")
		_ = out.Flush()
		hold = hold[j:]
	}
}

// TestHoldConsumerKilled runs held consumers in child processes while
// producer processes write, and SIGKILLs each consumer at a random point:
// at a point it picks itself (inside a Batch loop, after one, just after a
// Release), or at a random moment the parent picks (anywhere, Release
// included). Each successor resumes at the released position: for every
// producer, its first message is the one after the last surely released
// (or, when the predecessor died around a Release, after the last it meant
// to release), and it goes on in order without a gap; so nothing is lost,
// and what is delivered again is exactly what was held and not released.
// A last consumer drains the ring; every message was delivered.
func TestHoldConsumerKilled(t *testing.T) {
	kinds := []struct {
		name string
		cfg  ipc.Config
		tags []string
	}{
		{"spsc", ipc.Config{Capacity: 1 << 12, MaxMessage: 128}, []string{"a"}},
		{"spsc sequences", ipc.Config{Capacity: 1 << 12, MaxMessage: 128, Sequences: true}, []string{"a"}},
		{"header commit sequences", ipc.Config{Capacity: 1 << 12, MaxMessage: 128, HeaderCommit: true, Sequences: true}, []string{"a"}},
		{"mpsc", ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 1 << 12, MaxMessage: 128}, []string{"a", "b"}},
		{"mpsc sequences", ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 1 << 12, MaxMessage: 128, Sequences: true}, []string{"a", "b"}},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) { holdConsumerKilled(t, kind.cfg, kind.tags) })
	}
}

func holdConsumerKilled(t *testing.T, cfg ipc.Config, tags []string) {
	const count = 6000            // messages per producer: about 80 times the capacity
	const kills = 12              // consumer incarnations killed
	const stuck = time.Minute * 5 // only a stuck test meets it
	r, err := ipc.Create(testutil.Name(t), cfg)
	require.NoError(t, err)
	defer r.Close()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 16))

	// The producer processes.
	var producers []*exec.Cmd
	prodDone := make(chan error, len(tags))
	for i, tag := range tags {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=hold-producer", "SHMRING_T_PATH="+r.Path(),
			"SHMRING_T_ID="+strconv.Itoa(i+1), "SHMRING_T_COUNT="+strconv.Itoa(count), "SHMRING_T_TAG="+tag)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		producers = append(producers, cmd)
		go func() { prodDone <- cmd.Wait() }()
	}
	prodWaited := 0
	defer func() { // on failure too: no producer outlives the test
		for _, cmd := range producers {
			_ = cmd.Process.Kill()
		}
		for ; prodWaited < len(tags); prodWaited++ {
			<-prodDone
		}
	}()

	// run starts a consumer process and returns what it printed once it
	// died (itself, or killed when stop returns).
	run := func(die string, seed uint64, stop func(lines func() int64, exited <-chan struct{})) []string {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=held-consumer", "SHMRING_T_PATH="+r.Path(),
			"SHMRING_T_DIE="+die, "SHMRING_T_SEED="+strconv.FormatUint(seed, 10))
		cmd.Stderr = os.Stderr
		pipe, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		var got []string
		var n atomic.Int64
		done := make(chan struct{})
		defer func() { // on failure too
			_ = cmd.Process.Kill()
			<-done
			_ = cmd.Wait()
		}()
		go func() {
			defer close(done)
			br := bufio.NewReader(pipe)
			for {
				l, err := br.ReadString('\n')
				if err != nil { // a partial last line was never printed in full
					return
				}
				got = append(got, strings.TrimSuffix(l, "\n"))
				n.Add(1)
			}
		}()
		stop(n.Load, done)
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		t.Logf("consumer (%s): %v, %d lines", die, cmd.ProcessState, len(got))
		require.NotEmpty(t, got, "the consumer process died before it was ready")
		require.Equal(t, "ready", got[0])
		return got[1:]
	}

	released := map[string]int{}  // per producer: the last message surely released
	cands := map[string][]int{}   // per producer: releases begun and not seen done (killed around them)
	delivered := map[string]int{} // per producer: the last message delivered
	for _, tag := range tags {
		released[tag], delivered[tag] = -1, -1
	}
	check := func(k int, stream []string) {
		next := map[string]int{} // per producer: the next message expected in this stream
		var maybe map[string]int // the release this stream began and has not seen done
		for i, line := range stream {
			f := strings.Fields(line)
			switch f[0] {
			case "D":
				require.Len(t, f, 3, "incarnation %d line %d: %q", k, i, line)
				tag := f[1]
				m, err := strconv.Atoi(f[2])
				require.NoError(t, err)
				want, ok := next[tag]
				if !ok {
					// The first of this producer: the one after what was
					// released, or after part or all of a release its
					// predecessor began and was killed in: a Release
					// stores the released records' sequences one by one,
					// then the position, so a successor of a ring with
					// sequences resumes after the last one stored,
					// anywhere up to the release's end, never past it.
					last := released[tag]
					for _, c := range cands[tag] {
						last = max(last, c)
					}
					require.True(t, m >= released[tag]+1 && m <= last+1, "incarnation %d: producer %s resumes at message %d; released %d, begun %v", k, tag, m, released[tag], cands[tag])
					released[tag] = m - 1 // all before it was released (or discarded as released)
					delete(cands, tag)
					want = m
				}
				require.Equal(t, want, m, "incarnation %d: producer %s in order, no gap", k, tag)
				next[tag] = m + 1
				delivered[tag] = max(delivered[tag], m)
			case "I":
				require.Nil(t, maybe, "incarnation %d: I after an I", k)
				maybe = map[string]int{}
				for _, tk := range f[1:] {
					tag, ks, _ := strings.Cut(tk, ":")
					m, err := strconv.Atoi(ks)
					require.NoError(t, err)
					require.Less(t, m, next[tag], "incarnation %d: a release of what was not delivered", k)
					maybe[tag] = m
				}
			case "R":
				require.NotNil(t, maybe, "incarnation %d: R without I", k)
				for tag, m := range maybe {
					released[tag] = m
				}
				maybe = nil
			default:
				t.Fatalf("incarnation %d: line %q", k, line)
			}
		}
		for tag, m := range maybe {
			cands[tag] = append(cands[tag], m)
		}
	}
	for k := 0; k < kills; k++ {
		s := rng.Uint64()
		if k%2 == 0 {
			// It kills itself at a point it picks; a stuck one is killed.
			check(k, run("self", s, func(_ func() int64, exited <-chan struct{}) {
				select {
				case <-exited:
				case <-time.After(stuck):
					t.Errorf("incarnation %d never reached its death", k)
				}
			}))
			continue
		}
		// Killed at a moment the parent picks, once it has printed some
		// lines (chaos, not synchronisation: the moment is any).
		after := int64(1 + rng.IntN(400))
		check(k, run("none", s, func(lines func() int64, exited <-chan struct{}) {
			waitFor(t, stuck, func() bool {
				select {
				case <-exited: // idle: the ring ran dry
					return true
				default:
					return lines() >= after
				}
			})
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
		}))
	}
	// The last consumer releases all it reads, until the producers are
	// done and the ring is empty.
	check(kills, run("drain", rng.Uint64(), func(lines func() int64, _ <-chan struct{}) {
		waitFor(t, stuck, func() bool { return lines() >= 1 }) // ready
		deadline := time.After(stuck)
		for ; prodWaited < len(tags); prodWaited++ {
			select {
			case err := <-prodDone:
				require.NoError(t, err, "a producer process failed")
			case <-deadline:
				t.Fatal("the producers did not finish with a consumer running")
			}
		}
		waitFor(t, stuck, func() bool {
			st, err := r.Stats()
			require.NoError(t, err)
			return st.Depth == 0
		})
	}))
	for _, tag := range tags {
		require.Equal(t, count-1, delivered[tag], "producer %s: every message delivered", tag)
	}
	st, err := r.Stats()
	require.NoError(t, err)
	require.Zero(t, st.Depth)
	require.Equal(t, uint64(count*len(tags)), st.MsgsIn)
	require.Zero(t, st.Lost)
}
