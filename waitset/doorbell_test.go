package waitset_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/shm"
	"github.com/shmring/shmring/waitset"
	"github.com/stretchr/testify/require"
)

// Line 15's words (docs/layout.md, "Line 15: doorbell"), region offsets.
const (
	offBellID    = 1920
	offBellWakes = 1928
	offBellFails = 1936
)

// bellRing creates a ring in dir (flag bit 4 if flagged) that the test
// closes at its end.
func bellRing(t *testing.T, dir string, cfg ipc.Config) *ipc.Ring {
	t.Helper()
	r, err := ipc.Create(filepath.Base(testutil.Name(t)), cfg, ipc.WithDir(dir))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// doorbells lists the doorbell files in dir.
func doorbells(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if _, ok := shm.DoorbellID(e.Name()); ok {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestNoLostWakeupDoorbell is TestNoLostWakeup for members on a doorbell:
// 8 flagged rings (SPSC and MPSC) in one directory, so the set sleeps on
// one doorbell and its own word only; thousands of sleeps, each ended by a
// producer of a random member, with a sleep slice of a minute (only a
// wake-up ends a sleep in time): none is missed, with and without random
// pokes (sleeps that follow another of the same wait without a
// membarrier). The same with the set's re-check removed misses wake-ups:
// the test can fail. The set's doorbell is removed with the set.
func TestNoLostWakeupDoorbell(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	count := 2000
	if testing.Short() {
		count = 300
	}
	dir := t.TempDir()
	rings := func() []*ipc.Ring {
		var rs []*ipc.Ring
		for i := range 8 {
			kind := ipc.SPSC
			if i%2 == 1 {
				kind = ipc.MPSC
			}
			rs = append(rs, bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Kind: kind, Doorbell: true}))
		}
		return rs
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	s, late := pingPongRings(t, count, rings(), nil, false)
	require.Zero(t, late, "no wake-up was missed in %d sleeps", s.Parks())
	st := s.Stats()
	require.Greater(t, st.DoorbellWakeups, uint64(count/10), "the doorbell woke the set")
	require.Equal(t, st.DoorbellWakeups, st.Wakeups, "only the doorbell: no member's own word")
	for _, m := range st.Members {
		require.NotZero(t, m.Doorbell, "%s is on the doorbell", m.Name)
		require.Equal(t, st.Members[0].Doorbell, m.Doorbell, "one doorbell for one directory")
		require.Zero(t, m.DoorbellFailures)
	}
	require.Len(t, doorbells(t, dir), 1)
	require.NoError(t, s.Close())
	require.Empty(t, doorbells(t, dir), "Close removes the doorbell")

	s, late = pingPongRings(t, count/2, rings(), nil, true)
	require.Zero(t, late, "no wake-up was missed in %d sleeps", s.Parks())
	require.Less(t, s.Barriers(), s.Parks(), "sleeps without a membarrier were tested")
	restore()

	restore = waitset.BreakParkProtocol(true, 5*time.Millisecond)
	defer restore()
	_, late = pingPongRings(t, 300, rings(), nil, false)
	require.NotZero(t, late, "without the re-check, wake-ups are missed, and the test sees it")
}

// TestMixedSet: a set of flagged rings in two directories, an unflagged
// ring and a flagged memfd ring sleeps on two doorbells and the two rings'
// own words; every message wakes it in time (a sleep slice of a minute),
// each member on the word its producers ring.
func TestMixedSet(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	d1, d2 := t.TempDir(), t.TempDir()
	memfd, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1 << 12, Memfd: true, Doorbell: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = memfd.Close() })
	rings := []*ipc.Ring{
		bellRing(t, d1, ipc.Config{Capacity: 1 << 12, Doorbell: true}),
		bellRing(t, d2, ipc.Config{Capacity: 1 << 12, Kind: ipc.MPSC, Doorbell: true}),
		newRing(t, ipc.Config{Capacity: 1 << 12}),
		memfd,
	}
	s, late := pingPongRings(t, 400, rings, nil, false)
	require.Zero(t, late, "no wake-up was missed in %d sleeps", s.Parks())
	st := s.Stats()
	require.NotZero(t, st.Members[0].Doorbell)
	require.NotZero(t, st.Members[1].Doorbell)
	require.NotEqual(t, st.Members[0].Doorbell, st.Members[1].Doorbell, "one doorbell per directory")
	require.Zero(t, st.Members[2].Doorbell, "unflagged: its own word")
	require.Zero(t, st.Members[3].Doorbell, "memfd: no directory, its own word")
	require.NotZero(t, st.DoorbellWakeups)
	require.Greater(t, st.Wakeups, st.DoorbellWakeups, "the own words woke it too")
	require.NotZero(t, st.Members[2].Wakeups+st.Members[3].Wakeups)
	require.Len(t, doorbells(t, d1), 1)
	require.Len(t, doorbells(t, d2), 1)
	require.NotZero(t, testutil.RingWord(t, rings[0].Path(), offBellWakes), "line 15 counts the doorbell's wakes")
	require.Equal(t, st.Members[0].Doorbell, testutil.RingWord(t, rings[0].Path(), offBellID))

	// Leave clears line 15 and removes the doorbell with its last member.
	require.NoError(t, s.Leave(s.Members()[0]))
	require.Zero(t, testutil.RingWord(t, rings[0].Path(), offBellID))
	require.Empty(t, doorbells(t, d1))
	require.Len(t, doorbells(t, d2), 1)
}

// bellChild runs the doorbell tests' child roles: "producer" writes, for
// each line i read from stdin, one message to ring i of SHMRING_T_PATHS;
// "set" joins the rings as one set, prints "ready" and reads forever.
func bellChild(role string) error {
	var rings []*ipc.Ring
	for _, path := range strings.Split(os.Getenv("SHMRING_T_PATHS"), ",") {
		r, err := ipc.Open(path)
		if err != nil {
			return err
		}
		rings = append(rings, r)
	}
	switch role {
	case "producer":
		var ps []*ipc.Producer
		for _, r := range rings {
			p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: time.Hour}})
			if err != nil {
				return err
			}
			ps = append(ps, p)
		}
		in := bufio.NewScanner(os.Stdin)
		for n := 0; in.Scan(); n++ {
			i, err := strconv.Atoi(in.Text())
			if err != nil || i < 0 || i >= len(ps) {
				return fmt.Errorf("bad ring index %q", in.Text())
			}
			if err := ps[i].Write(context.Background(), []byte(strconv.Itoa(n))); err != nil {
				return err
			}
		}
		return in.Err()
	case "set":
		s, err := waitset.New(&waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}})
		if err != nil {
			return err
		}
		for _, r := range rings {
			if _, err := s.Join(r); err != nil {
				return err
			}
		}
		fmt.Println("ready")
		for {
			if _, err := s.Read(context.Background(), 32, func(*waitset.Member, []byte) {}); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("unknown role bell-%s", role)
}

// startBellChild starts a child process of role on rings.
func startBellChild(t *testing.T, role string, rings ...*ipc.Ring) *exec.Cmd {
	t.Helper()
	var paths []string
	for _, r := range rings {
		paths = append(paths, r.Path())
	}
	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=bell-"+role, "SHMRING_T_PATHS="+strings.Join(paths, ","))
	cmd.Stderr = os.Stderr
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestDoorbellCrossProcess: producers in another process wake a set via
// the doorbells (flagged rings in two directories, one in /dev/shm) and
// via its own words (an unflagged ring): 300 messages, each to a random
// ring, each sent after the previous was received, with a sleep slice of a
// minute: no wake-up missed, and the doorbells did the waking of the
// flagged members.
func TestDoorbellCrossProcess(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	rings := []*ipc.Ring{
		newRing(t, ipc.Config{Capacity: 1 << 12, Doorbell: true}), // /dev/shm
		bellRing(t, t.TempDir(), ipc.Config{Capacity: 1 << 12, Kind: ipc.MPSC, Doorbell: true}),
		newRing(t, ipc.Config{Capacity: 1 << 12}),
	}
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, rings...)
	cmd := startBellChild(t, "producer", rings...)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	rng := rand.New(rand.NewPCG(5, 6))
	before := waitset.LateWakes()
	const count = 300
	for i := range count {
		want := rng.IntN(len(rings))
		_, err := fmt.Fprintln(in, want)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), stuck)
		var from *waitset.Member
		n, err := s.Read(ctx, 1, func(m *waitset.Member, _ []byte) { from = m })
		cancel()
		require.NoError(t, err, "message %d", i)
		require.Equal(t, 1, n)
		require.Equal(t, ms[want], from)
		require.Zero(t, waitset.LateWakes()-before, "no wake-up missed (message %d)", i)
	}
	st := s.Stats()
	require.NotZero(t, st.Members[0].Doorbell)
	require.NotZero(t, st.Members[1].Doorbell)
	require.NotEqual(t, st.Members[0].Doorbell, st.Members[1].Doorbell)
	require.NotZero(t, st.DoorbellWakeups, "the child's producers rang the doorbells")
	require.NotZero(t, st.Members[0].DoorbellWakes+st.Members[1].DoorbellWakes)
	require.Zero(t, st.Members[0].DoorbellFailures+st.Members[1].DoorbellFailures)
	require.NoError(t, in.Close())
	require.NoError(t, cmd.Wait())
	require.NoError(t, s.Close())
	_, err = os.Stat(filepath.Join(shm.DefaultDir, shm.DoorbellName(st.Members[0].Doorbell)))
	require.ErrorIs(t, err, os.ErrNotExist, "the set removed its doorbell in /dev/shm")
}

// TestDoorbellSetKilled: a set process holding a flagged ring is
// SIGKILLed; its doorbell file stays, dead (its lock free), and line 15
// still names it. The next consumer, a plain ipc.Consumer, clears line 15
// as it takes the role, and a producer then wakes it by the ring's own
// word (line 5's wake-ups count it; line 15's do not move). A new set
// joins: it removes the dead doorbell, stores its own id, and is woken by
// its doorbell.
func TestDoorbellSetKilled(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	dir := t.TempDir()
	r := bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Doorbell: true})
	cmd := startBellChild(t, "set", r)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	dead := testutil.RingWord(t, r.Path(), offBellID)
	require.NotZero(t, dead, "the set stored its doorbell's id")
	deadPath := filepath.Join(dir, shm.DoorbellName(dead))
	require.FileExists(t, deadPath)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	alive, err := shm.DoorbellAlive(deadPath)
	require.NoError(t, err)
	require.False(t, alive, "the killed set's lock is gone")

	p := producer(t, r)
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}})
	require.NoError(t, err)
	require.Zero(t, testutil.RingWord(t, r.Path(), offBellID), "the consumer cleared the dead set's id")
	st0, err := r.Stats()
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() {
		_, err := c.Read(ctxFor(t), 1, func([]byte) {})
		got <- err
	}()
	waitFor(t, func() bool {
		st, err := r.Stats()
		return err == nil && st.ConsumerParks > st0.ConsumerParks
	}, "the consumer sleeps")
	require.NoError(t, p.TryWrite([]byte("plain")))
	require.NoError(t, <-got)
	require.Zero(t, testutil.RingWord(t, r.Path(), offBellWakes), "no doorbell rung")
	require.NoError(t, c.Close())

	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, r)
	require.NoFileExists(t, deadPath, "the new set removed the dead doorbell")
	id := ms[0].Stats().Doorbell
	require.NotZero(t, id)
	require.NotEqual(t, dead, id)
	require.Equal(t, id, testutil.RingWord(t, r.Path(), offBellID))
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(ctxFor(t), 1, func(*waitset.Member, []byte) {})
		done <- err
	}()
	waitFor(t, func() bool { return s.Parks() > 0 }, "the set sleeps")
	require.NoError(t, p.TryWrite([]byte("set")))
	require.NoError(t, <-done)
	require.Zero(t, s.Stats().Timeouts, "woken, not timed out")
}

// TestDoorbellRingClosedWhileWaiting: a member on a doorbell whose ring is
// closed while the set sleeps (a slice of a minute) ends the sleep at once
// (the consumer's shut pokes the set: the set is not sleeping on the
// ring's line 5, which Ring.Close wakes), and is dropped and reported.
func TestDoorbellRingClosedWhileWaiting(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	dir := t.TempDir()
	a := bellRing(t, dir, ipc.Config{Doorbell: true})
	b, err := ipc.Create("b", ipc.Config{Doorbell: true}, ipc.WithDir(dir))
	require.NoError(t, err)
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Minute}}, a, b)
	require.NotZero(t, ms[1].Stats().Doorbell)
	producer(t, a)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(ctxFor(t), 1, func(*waitset.Member, []byte) {})
		done <- err
	}()
	waitFor(t, func() bool { return s.Parks() > 0 }, "the set sleeps")
	require.NoError(t, b.Close())
	err = <-done
	require.ErrorIs(t, err, ipc.ErrClosed)
	var me *waitset.MemberError
	require.ErrorAs(t, err, &me)
	require.Equal(t, ms[1], me.Member)
	require.Zero(t, s.Stats().Timeouts, "the close ended the sleep, not its slice")
	require.Len(t, doorbells(t, dir), 1, "a's doorbell stays")
}

// TestDoorbellDemoted: a producer that cannot ring the doorbell (here its
// file was given to another user, so producers refuse it) counts a failure
// and wakes the ring's line 5; the set, asleep on the doorbell, gets that
// message only when its sleep slice runs out, then sees line 15's failures
// move and sleeps on the member's own word: the next messages wake it in
// time (a slice of a minute).
func TestDoorbellDemoted(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	restore := waitset.BreakParkProtocol(false, 20*time.Millisecond)
	defer restore()
	dir := t.TempDir()
	r := bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Doorbell: true})
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, r)
	id := ms[0].Stats().Doorbell
	require.NotZero(t, id)
	require.NoError(t, os.Chown(filepath.Join(dir, shm.DoorbellName(id)), 4242, 4242))
	p := producer(t, r)
	read := func() {
		t.Helper()
		done := make(chan error, 1)
		parks := s.Parks()
		go func() {
			_, err := s.Read(ctxFor(t), 1, func(*waitset.Member, []byte) {})
			done <- err
		}()
		waitFor(t, func() bool { return s.Parks() > parks }, "the set sleeps")
		require.NoError(t, p.TryWrite([]byte("m")))
		require.NoError(t, <-done)
	}
	read()
	require.Equal(t, uint64(1), ms[0].Stats().DoorbellFailures)
	restore()
	restore = waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	timeouts := s.Stats().Timeouts
	for range 20 {
		read()
	}
	st := ms[0].Stats()
	require.Zero(t, st.Doorbell, "moved to its own word")
	require.Zero(t, testutil.RingWord(t, r.Path(), offBellID), "line 15 cleared")
	require.Equal(t, timeouts, s.Stats().Timeouts, "no sleep ran out since")
	require.Equal(t, uint64(1), st.DoorbellFailures)
}

// TestDoorbellDirectoriesBeyondVector: one sleep's futex_waitv holds the
// set's own word and at most 126 doorbells. A set with flagged members in
// 127 directories keeps the 127th on its own word (line 15 at 0, so its
// producers wake that word), and a message written to it while the set
// sleeps wakes it: with a slice of a minute, no sleep runs out. (With a
// 127th doorbell made, and left out of the sleep, its producers rang a
// doorbell nobody slept on and the sleep ran its whole slice.)
func TestDoorbellDirectoriesBeyondVector(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	const dirs = 127
	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	base := t.TempDir()
	var rings []*ipc.Ring
	for i := range dirs {
		dir := filepath.Join(base, fmt.Sprint(i))
		require.NoError(t, os.Mkdir(dir, 0o700))
		rings = append(rings, bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Doorbell: true}))
	}
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, rings...)
	for _, m := range ms[:dirs-1] {
		require.NotZero(t, m.Stats().Doorbell, "the first 126 directories each have a doorbell")
	}
	last := ms[dirs-1]
	require.Zero(t, last.Stats().Doorbell, "the 127th stays on its own word")
	require.Empty(t, doorbells(t, filepath.Dir(rings[dirs-1].Path())), "and no doorbell is made there")
	p := producer(t, rings[dirs-1])
	for range 3 {
		n, err := readOne(t, s, ctxFor(t), func() { require.NoError(t, p.TryWrite([]byte("m"))) })
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}
	require.Zero(t, s.Stats().Timeouts, "every sleep was woken, none ran out")
}
