package ipc_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// Producers in containers that share /dev/shm run in PID namespaces of their
// own: the PID they record in their slot means nothing to a consumer outside.
// These tests run such producers for real, with unshare(1).

// nsMessage is the message the namespaced producer claims: "0:0:" and x's,
// 100 bytes, in the format seqChecker and checkPad read.
func nsMessage() []byte { return []byte("0:0:" + strings.Repeat("x", 96)) }

// nsClaimChild, run in a PID namespace of its own, takes producer slot 0 of
// the ring at SHMRING_T_PATH, claims nsMessage and fills it, prints
// "claimed PID PIDNS", and holds the claim until a line arrives on stdin;
// then it commits, prints "committed" and exits. Killed instead, it dies
// holding the claim.
func nsClaimChild() error {
	r, err := ipc.Open(os.Getenv("SHMRING_T_PATH"))
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Producer(&ipc.ProducerConfig{ID: 1}) // slot 0
	if err != nil {
		return err
	}
	msg := nsMessage()
	b, err := p.Claim(context.Background(), len(msg))
	if err != nil {
		return err
	}
	copy(b, msg)
	fmt.Printf("claimed %d %d\n", os.Getpid(), proc.PIDNamespace())
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the word to commit: %w", err)
	}
	if err := p.Commit(len(b)); err != nil {
		return err
	}
	fmt.Println("committed")
	return p.Close()
}

// nsClaimer is a running nsClaimChild.
type nsClaimer struct {
	cmd   *exec.Cmd // unshare's process
	stdin io.WriteCloser
	lines chan string // its stdout, line by line; closed at EOF
	pid   int         // its PID in its own namespace
	pidNS uint64      // its PID namespace
}

// startNSClaimer starts nsClaimChild in a new PID namespace on the ring at
// path and waits until it holds its claim. It skips t where unshare is
// refused.
func startNSClaimer(t *testing.T, path string) *nsClaimer {
	t.Helper()
	cmd := testutil.InPIDNamespace(t, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=ns-claim", "SHMRING_T_PATH="+path)
	// Its errors, shown if the test fails (unshare may also complain
	// when its child is killed).
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	// Killing unshare kills the child too (proc.DieWithParent).
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("namespaced producer's stderr:\n%s", stderr.String())
		}
	})
	n := &nsClaimer{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
	go func() {
		defer close(n.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
	}()
	line := n.next(t)
	f := strings.Fields(line)
	require.Len(t, f, 3, "namespaced producer said %q", line)
	require.Equal(t, "claimed", f[0])
	n.pid, err = strconv.Atoi(f[1])
	require.NoError(t, err)
	n.pidNS, err = strconv.ParseUint(f[2], 10, 64)
	require.NoError(t, err)
	require.NotZero(t, n.pidNS, "the namespaced producer could not read its PID namespace")
	require.NotEqual(t, proc.PIDNamespace(), n.pidNS, "unshare did not make a new PID namespace")
	return n
}

// next returns the child's next line of output, failing t if it ends or
// says nothing for a long time (only a stuck child takes a minute).
func (n *nsClaimer) next(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-n.lines:
		require.True(t, ok, "the namespaced producer exited early")
		return line
	case <-time.After(time.Minute):
		t.Fatal("the namespaced producer said nothing for a minute")
		return ""
	}
}

// commit lets the child commit its claim and waits for it to exit cleanly.
func (n *nsClaimer) commit(t *testing.T) {
	t.Helper()
	_, err := io.WriteString(n.stdin, "commit\n")
	require.NoError(t, err)
	require.Equal(t, "committed", n.next(t))
	require.NoError(t, n.cmd.Wait(), "the namespaced producer failed")
}

// checkPad checks that a message of the form "id:seq:xxx…" has nothing but
// x's after its second colon: a message altered by a late commit into
// reused space would not.
func checkPad(m []byte) error {
	parts := strings.SplitN(string(m), ":", 3)
	if len(parts) != 3 || strings.Trim(parts[2], "x") != "" {
		return fmt.Errorf("message altered: %q", m)
	}
	return nil
}

// slotVerdicts counts a consumer's questions about one producer slot's
// liveness and its "dead" answers. The consumer asks while it reads: read
// the counts only from the goroutine that reads.
type slotVerdicts struct{ asked, dead int }

// watchSlot counts c's liveness questions about slot; call it before c
// reads.
func watchSlot(c *ipc.Consumer, slot int) *slotVerdicts {
	v := &slotVerdicts{}
	c.WatchLiveness(func(s int, alive bool) {
		if s == slot {
			v.asked++
			if !alive {
				v.dead++
			}
		}
	})
	return v
}

// TestPIDNamespaceClaimHeld is issue 12's reproduction: a producer in
// another PID namespace claims 100 bytes and holds the claim while the
// consumer (host namespace, a 50 ms stall limit) asks about it again and
// again, and another producer process fills the ring. The consumer must
// wait: the claim is committed late and delivered intact, nothing is
// counted lost, and no other message is altered. Meanwhile Stats and
// Doctor (both as ringctl opens them) see the producer alive.
func TestPIDNamespaceClaimHeld(t *testing.T) {
	const count = 2000
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 1 << 12, MaxMessage: 256})
	require.NoError(t, err)
	defer r.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{StallLimit: 50 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	slot0 := watchSlot(c, 0)

	ns := startNSClaimer(t, r.Path())
	h := startMPSCProducer(t, r.Path(), 1, count)
	defer func() { _ = h.Process.Kill(); _ = h.Wait() }()
	heldSince := time.Now()

	chk := &seqChecker{next: map[int]uint64{}, gaps: map[int]int{}}
	var bad error
	committed := false
	for deadline := time.Now().Add(2 * time.Minute); chk.count < count+1 && bad == nil; {
		require.True(t, time.Now().Before(deadline), "stuck after %d of %d messages; asked about slot 0 %d times, %d dead; %s",
			chk.count, count+1, slot0.asked, slot0.dead, ringWords(r))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := c.Read(ctx, 64, func(m []byte) {
			if bad == nil {
				bad = errors.Join(chk.check(m), checkPad(m))
			}
			if bad == nil && strings.HasPrefix(string(m), "0:") && string(m) != string(nsMessage()) {
				bad = fmt.Errorf("the namespaced producer's message arrived altered: %q", m)
			}
		})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			require.NoError(t, err)
		}
		// Hold the claim for the 3 s, and until the consumer has
		// asked about it many times (the old code skipped it at the first
		// question), or has given up on it.
		if !committed && (slot0.dead > 0 || slot0.asked >= 20 && time.Since(heldSince) >= 3*time.Second) {
			if slot0.dead == 0 {
				require.Zero(t, chk.next[0], "the held claim was delivered before its commit")
				inspectNamespacedAlive(t, r, ns.pidNS)
			}
			t.Logf("claim held %v; the consumer asked %d times whether its producer lives", time.Since(heldSince).Round(time.Millisecond), slot0.asked)
			ns.commit(t)
			committed = true
			st, err := r.Stats()
			require.NoError(t, err)
			require.Zero(t, slot0.dead, "the live producer in another PID namespace was judged dead and its claim skipped (lost %d): its late commit lands in reused space", st.Lost)
		}
	}
	require.NoError(t, bad)
	require.Zero(t, slot0.dead, "the live producer in another PID namespace was judged dead")
	require.Equal(t, uint64(1), chk.next[0], "the namespaced producer's message was delivered once")
	require.Equal(t, uint64(count), chk.next[1])
	require.Zero(t, chk.gaps[0]+chk.gaps[1], "no message is missing")
	require.NoError(t, h.Wait())
	st, err := r.Stats()
	require.NoError(t, err)
	require.Zero(t, st.Lost, "nothing of a live producer is skipped")
	require.Equal(t, uint64(count+1), st.MsgsOut)
}

// inspectNamespacedAlive checks that Stats, Doctor and Doctor's repair see
// the producer of slot 0, which lives in PID namespace pidNS and holds a
// claim, as alive: not dead, not stuck, nothing repaired.
func inspectNamespacedAlive(t *testing.T, r *ipc.Ring, pidNS uint64) {
	t.Helper()
	st, err := r.Stats()
	require.NoError(t, err)
	require.NotEmpty(t, st.Producers)
	p0 := st.Producers[0]
	require.Equal(t, 0, p0.Slot)
	require.True(t, p0.Alive, "Stats calls the namespaced producer dead")
	require.Equal(t, pidNS, p0.PIDNamespace)
	require.Equal(t, uint32(1), p0.PID, "the first process of a new PID namespace is its PID 1")

	ro, err := ipc.Open(r.Path(), ipc.WithReadOnly()) // as ringctl doctor opens it
	require.NoError(t, err)
	defer ro.Close()
	d, err := ops.Doctor(ro, false)
	require.NoError(t, err)
	require.True(t, d.Healthy(), "doctor: %q", d.Problems)
	require.NotContains(t, d.DeadProducers, 0)
	require.False(t, d.Stuck)

	rw, err := ipc.Open(r.Path()) // as ringctl doctor --repair opens it
	require.NoError(t, err)
	defer rw.Close()
	d, err = ops.Doctor(rw, true)
	require.NoError(t, err, "doctor --repair found something to repair")
	require.Zero(t, d.Repaired)
	require.False(t, d.Stuck)
}

// TestPIDNamespaceProducerKilled: a producer in another PID namespace
// SIGKILLed while it holds a claim is found dead by its slot's lock, which
// the kernel releases, and its reservation is skipped and counted lost; the
// message behind it is delivered. Detection should take well under a
// second (the lock is tested at intervals up to a quarter of the stall
// limit); the time is logged, and only a stuck test fails.
func TestPIDNamespaceProducerKilled(t *testing.T) {
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 1 << 12, MaxMessage: 256})
	require.NoError(t, err)
	defer r.Close()
	c, err := r.Consumer(nil) // the default stall limit, 1 s
	require.NoError(t, err)
	defer c.Close()
	slot0 := watchSlot(c, 0)
	ns := startNSClaimer(t, r.Path())
	p1, err := r.Producer(&ipc.ProducerConfig{ID: 2}) // slot 1
	require.NoError(t, err)
	defer p1.Close()
	require.NoError(t, p1.Write(context.Background(), []byte("1:0:xxxx")))

	var got []string
	read := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := c.Read(ctx, 64, func(m []byte) { got = append(got, string(m)) })
		if !errors.Is(err, context.DeadlineExceeded) {
			require.NoError(t, err)
		}
	}
	// Alive while it lives: the consumer waits at its claim.
	for deadline := time.Now().Add(time.Minute); slot0.asked < 5 && slot0.dead == 0; read() {
		require.True(t, time.Now().Before(deadline), "the consumer never asked about the claim")
	}
	require.Zero(t, slot0.dead, "the live producer in another PID namespace was judged dead")
	require.Empty(t, got)

	pid := testutil.NamespacedPID(t, ns.cmd.Process.Pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	killed := time.Now()
	for deadline := killed.Add(30 * time.Second); len(got) == 0; read() {
		require.True(t, time.Now().Before(deadline), "the killed producer's claim was never skipped: %s", ringWords(r))
	}
	t.Logf("a SIGKILLed producer in another PID namespace was skipped %v after the kill", time.Since(killed).Round(time.Millisecond))
	require.Equal(t, []string{"1:0:xxxx"}, got)
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Lost)
	require.Equal(t, uint64(1), st.Producers[0].Lost)
	require.False(t, st.Producers[0].Alive)
}

// TestSlotLivenessRule checks the rule that decides whether a slot's holder
// lives, on a slot whose words and lock this test sets: the lock decides,
// and the PID and start time recorded beside it can overrule it (a lock
// kept by a child that inherited the descriptor) only when the slot records
// this process's own PID namespace. The offsets are docs/layout.md's.
func TestSlotLivenessRule(t *testing.T) {
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 1 << 12})
	require.NoError(t, err)
	defer r.Close()
	f, err := os.OpenFile(r.Path(), os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	slot0 := int64(shm.HeaderSize + ring.SlotsOffset)
	put := func(off int64, v uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		_, err := f.WriteAt(b[:], slot0+off)
		require.NoError(t, err)
	}
	start, err := proc.SelfStartTime()
	require.NoError(t, err)
	// Recorded: our PID with another start time, i.e. a process that has
	// gone and whose PID we now have.
	put(0, uint64(os.Getpid()))
	put(8, start+1)

	seg, err := shm.Open(r.Path())
	require.NoError(t, err)
	defer seg.Close()
	lock, err := seg.Lock(ring.SlotsOffset, ring.LineSize) // the slot's lock, as a forked child would keep it
	require.NoError(t, err)
	defer lock.Unlock()

	me := proc.PIDNamespace()
	require.NotZero(t, me)
	for _, tc := range []struct {
		name   string
		pidNS  uint64
		locked bool
		alive  bool
	}{
		{"our namespace: the PID proves the holder gone", me, true, false},
		{"another namespace: the PID means nothing, the lock decides", me + 1, true, true},
		{"namespace unknown (an older producer): the lock decides", 0, true, true},
		{"not locked: dead wherever it ran", me + 1, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			put(120, tc.pidNS)
			if !tc.locked {
				require.NoError(t, lock.Unlock())
			}
			st, err := r.Stats()
			require.NoError(t, err)
			require.Len(t, st.Producers, 1)
			require.Equal(t, tc.pidNS, st.Producers[0].PIDNamespace)
			require.Equal(t, tc.alive, st.Producers[0].Alive)
			d, err := ops.Doctor(r, false)
			require.NoError(t, err)
			if tc.alive {
				require.True(t, d.Healthy(), "%q", d.Problems)
				require.Empty(t, d.DeadProducers)
			} else {
				require.Equal(t, []int{0}, d.DeadProducers)
			}
			said := strings.Join(d.Problems, "\n")
			if tc.locked && !tc.alive {
				require.Contains(t, said, "in this PID namespace) is gone")
			} else {
				require.NotContains(t, said, "is gone")
			}
		})
	}
}

// TestPIDNamespaceReleaseLockHolder: on an MPSC drop-oldest ring, the
// release lock held by a producer in another PID namespace is not taken
// from it while that producer lives: a producer reclaiming room waits its
// turn (here it gives up its attempt: the lock, set by this test, is never
// released), and once the holder is killed the lock is taken over.
func TestPIDNamespaceReleaseLockHolder(t *testing.T) {
	name := testutil.Name(t)
	ctx := context.Background()
	r, err := ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: 2, DropOldest: true, Capacity: 1 << 12, MaxMessage: 256})
	require.NoError(t, err)
	defer r.Close()
	p1, err := r.Producer(&ipc.ProducerConfig{ID: 2, Full: ipc.DropOldest}) // slot 1
	require.NoError(t, err)
	defer p1.Close()
	msg := []byte("1:0:" + strings.Repeat("x", 196))
	// The oldest record committed, so that reclaiming it takes the lock
	// (producers do not take it to reclaim a pending record).
	require.NoError(t, p1.Write(ctx, msg))
	ns := startNSClaimer(t, r.Path())
	f, err := os.OpenFile(r.Path(), os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	const releaseLock = shm.HeaderSize + 904 // docs/layout.md, line 7
	lockWord := func() uint64 {
		var b [8]byte
		_, err := f.ReadAt(b[:], releaseLock)
		require.NoError(t, err)
		return binary.LittleEndian.Uint64(b[:])
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], 0+1) // held by the producer of slot 0
	_, err = f.WriteAt(b[:], releaseLock)
	require.NoError(t, err)

	var full int
	for i := 0; i < 40; i++ { // 40 × 208 bytes: more than the ring holds
		err := p1.Write(ctx, msg)
		if errors.Is(err, ipc.ErrFull) {
			full++
			continue
		}
		require.NoError(t, err)
	}
	require.Positive(t, full, "the ring never filled")
	require.Equal(t, uint64(1), lockWord(), "the release lock was taken from a live producer in another PID namespace")

	require.NoError(t, syscall.Kill(testutil.NamespacedPID(t, ns.cmd.Process.Pid), syscall.SIGKILL))
	_ = ns.cmd.Wait()
	// Dead now: the next reclaiming write takes the lock over, reclaims
	// the oldest message and hands the lock back.
	st, err := r.Stats()
	require.NoError(t, err)
	require.NoError(t, p1.Write(ctx, msg))
	require.Zero(t, lockWord(), "the release lock of a dead holder was not taken over")
	st2, err := r.Stats()
	require.NoError(t, err)
	require.Greater(t, st2.ConsumerPos, st.ConsumerPos, "nothing was reclaimed")
}

// TestPIDNamespaceProducerAttached: a consumer whose only producer lives in
// another PID namespace knows it is attached: waiting for data, it never
// gives up with ErrPeerDead (here after a 20 ms peer timeout) while that
// producer holds its slot.
func TestPIDNamespaceProducerAttached(t *testing.T) {
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 1 << 12})
	require.NoError(t, err)
	defer r.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{PeerTimeout: 20 * time.Millisecond}})
	require.NoError(t, err)
	defer c.Close()
	ns := startNSClaimer(t, r.Path())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = c.Read(ctx, 1, func([]byte) { t.Fatal("a claim was delivered before its commit") })
	require.ErrorIs(t, err, context.DeadlineExceeded, "the consumer thinks no producer is attached")
	ns.commit(t)
	var got []byte
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.Read(ctx, 1, func(m []byte) { got = append(got, m...) })
	require.NoError(t, err)
	require.Equal(t, nsMessage(), got)
}
