package waitset_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/waitset"
	"github.com/stretchr/testify/require"
)

const childEnv = "SHMRING_WAITSET_CHILD"

// crashBudget is the child set's budget: at most this many messages of one
// member are delivered and not yet released when it is killed.
const crashBudget = 8

// child runs a child process's role: "set-consumer" consumes the rings
// whose paths are in SHMRING_T_PATHS (comma-separated) as one set and
// prints each message as "index:message", unbuffered, so every line it
// printed was delivered.
func child(role string) error {
	if role == "claim" {
		return claimChild(os.Getenv("SHMRING_T_PATHS"))
	}
	if r, ok := strings.CutPrefix(role, "peer-"); ok {
		return peerChild(r)
	}
	if r, ok := strings.CutPrefix(role, "bell-"); ok {
		return bellChild(r)
	}
	if role != "set-consumer" {
		return fmt.Errorf("unknown role %q", role)
	}
	s, err := waitset.New(&waitset.Config{Budget: crashBudget, Wait: ipc.Wait{PeerTimeout: time.Hour}})
	if err != nil {
		return err
	}
	index := map[*waitset.Member]string{}
	for i, path := range strings.Split(os.Getenv("SHMRING_T_PATHS"), ",") {
		r, err := ipc.Open(path)
		if err != nil {
			return err
		}
		m, err := s.Join(r)
		if err != nil {
			return err
		}
		index[m] = strconv.Itoa(i)
	}
	fmt.Println("ready")
	line := make([]byte, 0, 64)
	for {
		_, err := s.Read(context.Background(), 32, func(m *waitset.Member, msg []byte) {
			line = append(append(append(append(line[:0], index[m]...), ':'), msg...), '\n')
			_, _ = os.Stdout.Write(line)
		})
		if err != nil {
			return err
		}
	}
}

// TestSetConsumerKilled SIGKILLs the set's consumer process at random
// moments and starts a new one, while producers write to its three rings
// (SPSC and MPSC). Each restarted set resumes every member where the
// killed one released it: per ring, nothing is lost, order holds, and the
// only messages seen twice are, at each restart, the start of the new
// incarnation's stream repeating at most one turn (the budget) of what the
// killed one printed and had not released (the same rule as a single
// consumer's: docs/design.md).
func TestSetConsumerKilled(t *testing.T) {
	const per = 6000
	kills := 8
	rings := []*ipc.Ring{
		newRing(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 64}),
		newRing(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 64, Kind: ipc.MPSC}),
		newRing(t, ipc.Config{Capacity: 1 << 13, MaxMessage: 64}),
	}
	var paths []string
	for _, r := range rings {
		paths = append(paths, r.Path())
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	perr := make([]error, len(rings))
	for i, r := range rings {
		p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: time.Hour}})
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.Close()
			for seq := range per {
				if err := p.Write(ctx, []byte(strconv.Itoa(seq))); err != nil {
					perr[i] = fmt.Errorf("producer %d, message %d: %w", i, seq, err)
					return
				}
				if seq%16 == 0 {
					time.Sleep(time.Millisecond) // spread the writes over the kills
				}
			}
		}()
	}
	producersDone := make(chan struct{})
	go func() { wg.Wait(); close(producersDone) }()

	// received[i] holds each incarnation's stream of ring i.
	received := make([][][]int, len(rings))
	var printed sync.Mutex
	printedN := 0 // what the running incarnation printed so far
	run := func(stop func()) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=set-consumer", "SHMRING_T_PATHS="+strings.Join(paths, ","))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		var lines chan struct{}
		defer func() {
			_ = cmd.Process.Kill()
			if lines != nil {
				<-lines
			}
			_ = cmd.Wait()
		}()
		br := bufio.NewReader(out)
		l, err := br.ReadString('\n')
		require.NoError(t, err, "the set's process died before it was ready")
		require.Equal(t, "ready\n", l)
		streams := make([][]int, len(rings))
		lines = make(chan struct{})
		go func() {
			defer close(lines)
			for {
				l, err := br.ReadString('\n')
				if err != nil { // a partial last line was never delivered in full
					return
				}
				i, seq, ok := strings.Cut(strings.TrimSuffix(l, "\n"), ":")
				ii, err1 := strconv.Atoi(i)
				n, err2 := strconv.Atoi(seq)
				if !ok || err1 != nil || err2 != nil || ii < 0 || ii >= len(rings) {
					streams[0] = append(streams[0], -1) // garbage: fails the check
					continue
				}
				streams[ii] = append(streams[ii], n)
				printed.Lock()
				printedN++
				printed.Unlock()
			}
		}()
		stop()
		_ = cmd.Process.Kill()
		<-lines
		for i := range rings {
			received[i] = append(received[i], streams[i])
		}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for range kills {
		killAfter := time.Duration(rng.IntN(30)) * time.Millisecond
		printed.Lock()
		printedN = 0
		printed.Unlock()
		run(func() {
			// Kill it while it delivers (unless the producers are done):
			// once it has printed, at a random moment (chaos, not
			// synchronisation: the sleep only picks the moment).
			waitFor(t, func() bool {
				printed.Lock()
				defer printed.Unlock()
				select {
				case <-producersDone:
					return true
				default:
					return printedN > 0
				}
			}, "the set's process delivers")
			time.Sleep(killAfter)
		})
	}
	// The last incarnation runs until everything is delivered.
	run(func() {
		select {
		case <-producersDone:
		case <-time.After(stuck):
		}
		waitFor(t, func() bool {
			for _, r := range rings {
				if st, err := r.Stats(); err != nil || st.Depth != 0 {
					return false
				}
			}
			return true
		}, "every ring drained")
	})
	for i, err := range perr {
		require.NoError(t, err, "producer %d", i)
	}
	redelivered := 0
	for i := range rings {
		next := 0 // the next sequence not yet seen
		for k, stream := range received[i] {
			for j, seq := range stream {
				if j == 0 && seq < next {
					redelivered += next - seq
					require.GreaterOrEqual(t, seq, next-crashBudget, "ring %d, incarnation %d: redelivered more than one turn", i, k)
					next = seq // re-delivery of the killed one's unreleased turn
				}
				require.Equal(t, next, seq, "ring %d, incarnation %d, line %d: lost, duplicated or out of order", i, k, j)
				next++
			}
		}
		require.Equal(t, per, next, "ring %d: every message delivered", i)
	}
	t.Logf("%d kills; messages per incarnation of ring 0: %v; %d re-delivered at restarts", kills, lens(received[0]), redelivered)
	_ = testutil.Prefix
}

func lens(streams [][]int) []int {
	var out []int
	for _, s := range streams {
		out = append(out, len(s))
	}
	return out
}

// claimChild claims a record in slot 0 of the MPSC ring at path, says
// "claimed", and waits to be killed.
func claimChild(path string) error {
	r, err := ipc.Open(path)
	if err != nil {
		return err
	}
	p, err := r.Producer(&ipc.ProducerConfig{ID: 1})
	if err != nil {
		return err
	}
	if _, err := p.Claim(context.Background(), 10); err != nil {
		return err
	}
	fmt.Println("claimed")
	select {}
}

// TestDeadReservationSkipped: an MPSC member stopped at the reservation of
// a producer process that was SIGKILLed while it held it: the set, asleep,
// wakes in time for its consumer's liveness check of the owner, skips the
// reservation (counted as lost) and delivers the message behind it, as a
// single consumer does; the other member is served meanwhile.
func TestDeadReservationSkipped(t *testing.T) {
	mp := newRing(t, ipc.Config{Kind: ipc.MPSC, Producers: 2})
	other := newRing(t, ipc.Config{})
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}, StallLimit: 20 * time.Millisecond}, mp, other)
	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=claim", "SHMRING_T_PATHS="+mp.Path())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	l, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "claimed\n", l)
	p, err := mp.Producer(&ipc.ProducerConfig{ID: 2})
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.TryWrite([]byte("behind")))
	po := producer(t, other)
	require.NoError(t, po.TryWrite([]byte("other")))

	got := map[*waitset.Member][]string{}
	read := func() {
		_, err := s.Read(ctxFor(t), 8, func(m *waitset.Member, msg []byte) { got[m] = append(got[m], string(msg)) })
		require.NoError(t, err)
	}
	read()
	require.Equal(t, []string{"other"}, got[ms[1]], "the other member is not held up")
	require.Empty(t, got[ms[0]], "stopped at the live claim")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	read() // sleeps until the consumer's liveness check finds the owner dead
	require.Equal(t, []string{"behind"}, got[ms[0]])
	st, err := mp.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Lost)
}
