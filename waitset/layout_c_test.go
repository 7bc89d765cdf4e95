package waitset_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/waitset"
	"github.com/stretchr/testify/require"
)

// TestDoorbellFromC: a producer written in C from docs/layout.md alone
// (ipc/testdata/ringread.c, "Line 15: doorbell") rings a Go set's doorbell.
// Two rings with flag bit 4 (SPSC and MPSC) in one directory, a set
// sleeping on their doorbell with a sleep slice of a minute (only a wake-up
// ends a sleep in time); the C program writes 200 messages to each, and
// after the first 100 waits until the set sleeps (line 5 parked, a park
// counted), so that its next write must wake it. Every message arrives in
// order, no sleep runs out, line 15 counts the C producer's doorbell wakes
// and no failure. Then the C consumer takes the role of a flagged ring and
// clears line 15's id, as any consumer must.
func TestDoorbellFromC(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) on PATH: the layout document is not checked from C")
	}
	bin := filepath.Join(t.TempDir(), "ringread")
	out, err := exec.Command(cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", bin, "../ipc/testdata/ringread.c").CombinedOutput()
	require.NoError(t, err, "%s", out)

	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	dir := t.TempDir()
	rings := []*ipc.Ring{
		bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Doorbell: true}),
		bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Kind: ipc.MPSC, Doorbell: true}),
	}
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, rings...)
	require.NotZero(t, ms[0].Stats().Doorbell)
	before := waitset.LateWakes()
	const count = 200
	for i, r := range rings {
		cmd := exec.CommandContext(testutil.ChildDeadline(t), bin, "write", r.Path(), "c", "0", fmt.Sprint(count), "gate")
		var cout strings.Builder
		cmd.Stdout, cmd.Stderr = &cout, &cout
		require.NoError(t, cmd.Start())
		got := 0
		for got < count {
			ctx, cancel := context.WithTimeout(context.Background(), stuck)
			_, err := s.Read(ctx, 64, func(m *waitset.Member, msg []byte) {
				require.Equal(t, ms[i], m)
				require.True(t, strings.HasPrefix(string(msg), fmt.Sprintf("c %d ", got)), "message %d in order: %q", got, msg)
				got++
			})
			cancel()
			require.NoError(t, err, "message %d of ring %d (C producer: %s)", got, i, cout.String())
		}
		require.NoError(t, cmd.Wait(), "%s", cout.String())
		require.Zero(t, waitset.LateWakes()-before, "no wake-up missed")
		st := ms[i].Stats()
		require.NotZero(t, st.DoorbellWakes, "the C producer rang the doorbell of ring %d", i)
		require.Zero(t, st.DoorbellFailures)
	}
	st := s.Stats()
	require.Zero(t, st.Timeouts, "no sleep ran out: every one was woken")
	require.NotZero(t, st.DoorbellWakeups)
	require.NoError(t, s.Leave(ms[0]))

	// The C consumer clears line 15 as it takes the role.
	r := rings[0]
	testutil.SetRingWord(t, r.Path(), offBellID, 0xdead)
	p := producer(t, r)
	require.NoError(t, p.TryWrite([]byte("end")))
	out, err = exec.CommandContext(testutil.ChildDeadline(t), bin, "read", r.Path(), "end").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Zero(t, testutil.RingWord(t, r.Path(), offBellID), "the C consumer cleared line 15's id")
}

// TestDoorbellFromDbprod (H36, finding 6): docs/examples/dbprod.c, an MPSC
// producer an outsider wrote from docs/layout.md alone, built with
// -Wall -Wextra -Werror, writes into a flagged ring read by a Go set that
// sleeps on the ring's doorbell with a slice of a minute (only a wake-up
// ends a sleep in time). First one process writes 300 messages while the
// set reads; then, three times, the set is left asleep and one process
// writes one message, which must wake it through the doorbell. Every
// message arrives, in order and intact; no sleep runs out and no wake-up is
// missed; the C producer rang the doorbell and never fell back to line 5.
func TestDoorbellFromDbprod(t *testing.T) {
	if !futex.WaitVAvailable() {
		t.Skip("futex_waitv unavailable: the set polls")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc on PATH: docs/examples/dbprod.c is not checked")
	}
	bin := filepath.Join(t.TempDir(), "dbprod")
	out, err := exec.Command(gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", bin, "../docs/examples/dbprod.c").CombinedOutput()
	require.NoError(t, err, "%s", out)

	restore := waitset.BreakParkProtocol(false, time.Minute)
	defer restore()
	dir := t.TempDir()
	r := bellRing(t, dir, ipc.Config{Capacity: 1 << 12, Kind: ipc.MPSC, Doorbell: true})
	s, ms := newSet(t, &waitset.Config{Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Hour}}, r)
	require.NotZero(t, ms[0].Stats().Doorbell)
	before := waitset.LateWakes()
	// send starts dbprod writing n messages; wait waits for it to exit
	// and checks that it never woke line 5 (its doorbell always opened).
	send := func(n int) (wait func()) {
		cmd := exec.CommandContext(testutil.ChildDeadline(t), bin, "send", r.Path(), fmt.Sprint(n), "0")
		var cout strings.Builder
		cmd.Stdout, cmd.Stderr = &cout, &cout
		require.NoError(t, cmd.Start())
		return func() {
			require.NoError(t, cmd.Wait(), "%s", cout.String())
			require.Contains(t, cout.String(), fmt.Sprintf("wrote %d; wakes: doorbell ", n))
			require.Contains(t, cout.String(), ", line 5 0 (", "no fall-back to line 5: %s", cout.String())
		}
	}
	check := func(want *int) func(*waitset.Member, []byte) {
		return func(m *waitset.Member, msg []byte) {
			require.Equal(t, ms[0], m)
			*want++
			require.Equal(t, fmt.Sprintf("dbprod %d", *want), string(msg), "every message, in order")
		}
	}

	const count = 300
	wait := send(count)
	got := 0
	for got < count {
		_, err := s.Read(ctxFor(t), 64, check(&got))
		require.NoError(t, err, "message %d", got+1)
	}
	wait()

	for range 3 {
		got = 0
		n, err := readOne(t, s, ctxFor(t), func() {
			// Line 5 (region 640): seq, then parked in the high half.
			require.NotZero(t, testutil.RingWord(t, r.Path(), 640)>>32, "the set announced itself on line 5")
			send(1)()
		})
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}

	require.Zero(t, waitset.LateWakes()-before, "no wake-up missed")
	st := s.Stats()
	require.Zero(t, st.Timeouts, "no sleep ran out: every one was woken")
	require.GreaterOrEqual(t, st.DoorbellWakeups, uint64(3), "the last three sleeps were ended by the doorbell")
	mst := ms[0].Stats()
	require.GreaterOrEqual(t, mst.DoorbellWakes, uint64(3))
	require.Zero(t, mst.DoorbellFailures)
	require.Zero(t, mst.MissedWakeups)
	require.Zero(t, mst.DoorbellRestores)
	require.NotZero(t, mst.Doorbell, "still on its doorbell")
	require.Equal(t, uint64(count+3), mst.Messages)
}
