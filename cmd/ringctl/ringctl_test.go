package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/demo"
	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	if os.Getenv("RINGCTL_TEST_CLAIM") != "" || os.Getenv("RINGCTL_TEST_ARGS") != "" || os.Getenv("RINGCTL_TEST_HANG_IN_CREATE") != "" || (len(os.Args) > 2 && os.Args[1] == demo.ChildArg) {
		proc.DieWithParent()
	}
	if path := os.Getenv("RINGCTL_TEST_CLAIM"); path != "" {
		claimChild(path)
	}
	if path := os.Getenv("RINGCTL_TEST_HANG_IN_CREATE"); path != "" {
		fmt.Fprintln(os.Stderr, "create:", testutil.HangInCreate(path))
		os.Exit(2)
	}
	if args := os.Getenv("RINGCTL_TEST_ARGS"); args != "" {
		// Run ringctl itself, as a child process of a test.
		out := io.Writer(os.Stdout)
		if path := os.Getenv("RINGCTL_TEST_TRUNCATE"); path != "" {
			out = &truncateOnWrite{w: os.Stdout, path: path}
		}
		os.Exit(run(stdio{os.Stdin, out, os.Stderr}, strings.Split(args, "\x1f")))
	}
	// The demo re-executes this binary as its producer and consumer.
	demo.ChildMain("")
	testutil.Main(m)
}

type result struct {
	code           int
	stdout, stderr string
}

func ringctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(stdio{strings.NewReader(stdin), &out, &errb}, args)
	return result{code, out.String(), errb.String()}
}

// newRingName returns a ring name that is removed when the test ends.
func newRingName(t *testing.T) string { return testutil.Name(t) }

func TestCreateStatRm(t *testing.T) {
	name := newRingName(t)
	r := ringctl(t, "", "create", name, "--size", "64KiB", "--max-msg", "1KiB")
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "capacity 64 KiB, max message 1 KiB, mode 0600")
	info, err := os.Stat("/dev/shm/" + name)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	r = ringctl(t, "", "create", "--size", "64KiB", name)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "file already exists")

	r = ringctl(t, "", "stat", name)
	require.Zero(t, r.code, r.stderr)
	for _, want := range []string{"kind", "spsc", "64 KiB", "high watermark", "full events", "consumer"} {
		require.Contains(t, r.stdout, want)
	}
	r = ringctl(t, "", "stat", "--json", name)
	require.Zero(t, r.code, r.stderr)
	var rep statReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Equal(t, uint64(64<<10), rep.Capacity)
	require.Equal(t, uint64(1<<10), rep.MaxMsg)
	require.Equal(t, "spsc", rep.Kind)
	require.Equal(t, "0600", rep.Mode)

	r = ringctl(t, "", "rm", name)
	require.Zero(t, r.code, r.stderr)
	r = ringctl(t, "", "stat", name)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no such ring (create it first")
}

func TestCreateOptions(t *testing.T) {
	dir := t.TempDir()
	r := ringctl(t, "", "create", "r1", "--size", "4096", "--mode", "0640", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	info, err := os.Stat(filepath.Join(dir, "r1"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), info.Mode().Perm())
	require.Contains(t, r.stdout, "max message 512 B")

	t.Setenv("SHMRING_DIR", dir)
	r = ringctl(t, "", "stat", "r1", "--json")
	require.Zero(t, r.code, r.stderr)
}

func TestUsageErrors(t *testing.T) {
	name := newRingName(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"create", name}, 2, "--size is required"},
		{[]string{"create", name, "--size", "1000"}, 2, "power of two"},
		{[]string{"create", name, "--size", "1MB"}, 2, "power of two"},
		{[]string{"create", name, "--size", "lots"}, 2, "invalid size"},
		{[]string{"create", name, "--size", "1MiB", "--max-msg", "512KiB"}, 1, "capacity/8"},
		{[]string{"create", name, "--size", "1MiB", "--mode", "999"}, 2, "octal"},
		{[]string{"create", name, "--size", "1MiB", "--kind", "weird"}, 2, "want spsc"},
		{[]string{"create", "--size", "1MiB"}, 2, "missing ring NAME"},
		{[]string{"create", "a", "b", "--size", "1MiB"}, 2, "want 1 argument"},
		{[]string{"create", "../x", "--size", "1MiB"}, 1, "invalid segment name"},
		{[]string{"stat", name, "--bogus"}, 2, "-bogus"},
		{[]string{"send", name, "--policy", "maybe"}, 2, "want hybrid, spin, yield, park, block, backoff, drop or drop-oldest"},
		{[]string{"recv", name, "--wait", "drop"}, 2, "--wait"},
		{[]string{"policy", name, "--consumer", "drop"}, 2, "--consumer"},
		{[]string{"recv", name, "--timeout", "soon"}, 2, "invalid duration"},
		{[]string{"frobnicate"}, 2, "unknown command"},
	} {
		r := ringctl(t, "", tc.args...)
		require.Equal(t, tc.code, r.code, "%v: %s", tc.args, r.stderr)
		require.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}
	require.Empty(t, testutil.Leftovers(), "failed creates leave nothing")
	r := ringctl(t, "", "stat", "--help")
	require.Zero(t, r.code)
	require.Contains(t, r.stdout, "usage: ringctl stat")
	r = ringctl(t, "", "--help")
	require.Zero(t, r.code)
	require.Contains(t, r.stdout, "ringctl demo")
}

func TestSendRecv(t *testing.T) {
	name := newRingName(t)
	require.Zero(t, ringctl(t, "", "create", name, "--size", "4KiB", "--max-msg", "64").code)

	r := ringctl(t, "alpha\nbeta\n\ngamma", "send", name)
	require.Zero(t, r.code, r.stderr)
	r = ringctl(t, "", "recv", name, "-n", "2")
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "alpha\nbeta\n", r.stdout)
	start := time.Now()
	r = ringctl(t, "", "recv", "--timeout", "100ms", name)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "\ngamma\n", r.stdout, "an empty line is an empty message; the last line needs no newline")
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)

	// Drop policy: the ring holds 4 KiB; 100 lines of 60 bytes do not fit.
	var in strings.Builder
	for i := 0; i < 100; i++ {
		in.WriteString(strings.Repeat("x", 60) + "\n")
	}
	in.WriteString(strings.Repeat("y", 65) + "\n") // larger than the maximum
	r = ringctl(t, in.String(), "send", name, "--policy", "drop")
	require.Equal(t, 4, r.code)
	require.Contains(t, r.stderr, "sent 56, dropped 45 (44 ring full, 1 larger than the 64 B maximum)")

	r = ringctl(t, "", "stat", name, "--json")
	var rep statReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Equal(t, uint64(44), rep.Drops)
	require.Equal(t, uint64(56), rep.Pending)
	require.Equal(t, uint64(56*72), rep.HighWater, "56 records of 8+64 bytes")

	r = ringctl(t, "", "recv", name, "-n", "56", "--timeout", "1s")
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, 56, strings.Count(r.stdout, "\n"))
}

func TestSendLongLine(t *testing.T) {
	name := newRingName(t)
	require.Zero(t, ringctl(t, "", "create", name, "--size", "1MiB").code)
	long := strings.Repeat("z", 100<<10) // longer than send's 64 KiB read buffer
	r := ringctl(t, long+"\nshort\n", "send", name)
	require.Zero(t, r.code, r.stderr)
	r = ringctl(t, "", "recv", name, "-n", "2")
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, long+"\nshort\n", r.stdout)
}

func TestCorruptSegment(t *testing.T) {
	name := newRingName(t)
	require.Zero(t, ringctl(t, "", "create", name, "--size", "4KiB").code)
	path := "/dev/shm/" + name
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xff, 0xff}, 40) // the header's total size
	require.NoError(t, err)
	require.NoError(t, f.Close())
	for _, args := range [][]string{{"stat", name}, {"stat", name, "--json"}, {"send", name}, {"recv", name, "-n", "1"}} {
		r := ringctl(t, "x\n", args...)
		require.Equal(t, 1, r.code, "%v", args)
		require.Contains(t, r.stderr, "checksum at offset 72", "%v", args)
	}
	r := ringctl(t, "", "rm", name)
	require.Zero(t, r.code, "a damaged segment can still be removed: %s", r.stderr)
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	r := ringctl(t, "", "demo", "--messages", "200000", "--dir", dir, "--size", "64KiB")
	require.Zero(t, r.code, r.stderr)
	for _, want := range []string{"throughput", "M msgs/s", "verified    200000 messages, every sequence number in order", "messages in / out  200000 / 200000", "high watermark", "removed"} {
		require.Contains(t, r.stdout, want)
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, ents, "the demo removes its ring")
}

// ringctl demo --bridge: through two rings and an embedded JetStream,
// every sequence verified, both bridges' counters printed, everything
// removed.
func TestDemoBridge(t *testing.T) {
	dir := t.TempDir()
	r := ringctl(t, "", "demo", "--bridge", "--messages", "4000", "--producers", "2", "--window", "64", "--dir", dir, "--size", "64KiB")
	require.Zero(t, r.code, r.stderr)
	for _, want := range []string{"throughput", "msgs/s", "verified", "4000 messages, every producer's sequence numbers in order",
		"stream", "bridge out", "published / acked / duplicates", "released from the ring", "bridge in", "fetched / written / acked", "removed"} {
		require.Contains(t, r.stdout, want)
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, ents, "the demo removes its rings")
	r = ringctl(t, "", "demo", "--bridge", "--producers", "0")
	require.Equal(t, 2, r.code, r.stderr)
}

func TestMPSCCommands(t *testing.T) {
	name := newRingName(t)
	r := ringctl(t, "", "create", name, "--kind", "mpsc", "--producers", "3", "--size", "64KiB")
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "mpsc, 3 producer slots")
	require.Zero(t, ringctl(t, "one\ntwo\n", "send", name, "--id", "2").code)
	require.Zero(t, ringctl(t, "three\n", "send", name).code)
	r = ringctl(t, "", "send", name, "--id", "3")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "slots 0 to 2")

	r = ringctl(t, "", "stat", name, "--json")
	require.Zero(t, r.code, r.stderr)
	var rep statReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Equal(t, "mpsc", rep.Kind)
	require.Equal(t, 3, rep.Slots)
	require.Len(t, rep.Producers, 2)
	require.Equal(t, 0, rep.Producers[0].Slot)
	require.Equal(t, uint64(1), rep.Producers[0].Produced)
	require.Equal(t, 2, rep.Producers[1].Slot)
	require.Equal(t, uint64(2), rep.Producers[1].Produced)
	require.False(t, rep.Producers[1].Alive)
	require.Equal(t, uint64(3), rep.Pending)

	r = ringctl(t, "", "stat", name)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "0 of 3 slots held")
	require.Contains(t, r.stdout, "slot  pid")

	r = ringctl(t, "", "recv", name, "-n", "3")
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "one\ntwo\nthree\n", r.stdout)

	for _, args := range [][]string{
		{"create", newRingName(t), "--size", "64KiB", "--producers", "2"},
		{"create", newRingName(t), "--size", "64KiB", "--kind", "mpsc", "--producers", "99999"},
	} {
		require.Equal(t, 2, ringctl(t, "", args...).code, "%v", args)
	}
}

func TestPolicyAndWaitingSend(t *testing.T) {
	name := newRingName(t)
	require.Zero(t, ringctl(t, "", "create", name, "--size", "1KiB", "--max-msg", "100").code)
	r := ringctl(t, "", "policy", name)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "producers none (each uses its own), consumer none")

	// No consumer reads: a blocking send stops at its first timeout and
	// says so (exit 3).
	line := strings.Repeat("b", 100) + "\n"
	start := time.Now()
	r = ringctl(t, strings.Repeat(line, 12), "send", name, "--policy", "block", "--timeout", "50ms")
	require.Equal(t, 3, r.code)
	require.Contains(t, r.stderr, "sent 9 of 12: the ring stayed full for 50ms")
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)

	// The override makes a parking sender drop, without it asking.
	r = ringctl(t, "", "policy", name, "--producers", "drop")
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "producers drop, consumer none")
	r = ringctl(t, line, "send", name, "--policy", "park")
	require.Equal(t, 4, r.code)
	require.Contains(t, r.stderr, "dropped 1")
	r = ringctl(t, "", "stat", name, "--json")
	var rep statReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Equal(t, "drop", rep.ProducerPolicy)
	require.Equal(t, uint64(2), rep.Drops)
	require.Zero(t, ringctl(t, "", "policy", name, "--producers", "none", "--consumer", "park").code)

	// A parked receiver is woken by a sender.
	done := make(chan result)
	go func() { done <- ringctl(t, "", "recv", name, "-n", "10", "--wait", "park") }()
	time.Sleep(50 * time.Millisecond)
	require.Zero(t, ringctl(t, "last\n", "send", name, "--policy", "park").code)
	r = <-done
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, 10, strings.Count(r.stdout, "\n"))
	require.True(t, strings.HasSuffix(r.stdout, "last\n"))
}

func TestCreateWithDelayAndPressure(t *testing.T) {
	name := newRingName(t)
	r := ringctl(t, "", "create", name, "--size", "64KiB", "--target-delay", "5ms", "--pressure-high", "32KiB")
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "mode 0600, timestamps, pressure high 32 KiB, low 16 KiB, target delay 5ms\n", "the confirmation shows the options")
	require.Zero(t, ringctl(t, "a\nb\nc\n", "send", name).code)
	require.Zero(t, ringctl(t, "", "recv", name, "-n", "3").code)
	r = ringctl(t, "", "stat", name, "--json")
	var rep statReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.True(t, rep.Timestamps)
	require.Equal(t, uint64(3), rep.DelayCount)
	require.Equal(t, int64(5*time.Millisecond), rep.TargetDelayNs)
	require.Equal(t, uint64(32<<10), rep.PressureHigh)
	require.Equal(t, uint64(16<<10), rep.PressureLow)
	require.NotZero(t, rep.DelayP99Ns)
	r = ringctl(t, "", "stat", name)
	require.Contains(t, r.stdout, "queueing delay  3 measured")
	for _, args := range [][]string{
		{"create", newRingName(t), "--size", "64KiB", "--delay-interval", "1s"},
		{"create", newRingName(t), "--size", "64KiB", "--pressure-low", "1KiB"},
		{"create", newRingName(t), "--size", "64KiB", "--pressure-high", "1MiB"},
	} {
		require.Equal(t, 2, ringctl(t, "", args...).code, "%v", args)
	}
}

func TestDropOldestCommands(t *testing.T) {
	name := newRingName(t)
	require.Zero(t, ringctl(t, "", "create", name, "--size", "1KiB", "--max-msg", "64", "--drop-oldest").code)
	var in strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&in, "%02d%s\n", i, strings.Repeat("x", 60))
	}
	r := ringctl(t, in.String(), "send", name, "--policy", "drop-oldest")
	require.Zero(t, r.code, r.stderr)
	r = ringctl(t, "", "recv", name, "--timeout", "50ms")
	require.Zero(t, r.code, r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Equal(t, "49", lines[len(lines)-1][:2], "newest wins")
	require.Less(t, len(lines), 20)
	plain := newRingName(t)
	require.Zero(t, ringctl(t, "", "create", plain, "--size", "1KiB").code)
	r = ringctl(t, "x\n", "send", plain, "--policy", "drop-oldest")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "--drop-oldest")
}

func TestOperatorCommands(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "a", "--size", "4KiB", "--dir", dir).code)
	require.Zero(t, ringctl(t, "", "create", "b", "--size", "4KiB", "--kind", "mpsc", "--producers", "2", "--dir", dir).code)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk"), []byte("not a ring"), 0o600))
	require.Zero(t, ringctl(t, "one\ntwo\nthree\n", "send", "a", "--dir", dir).code)

	r := ringctl(t, "", "ls", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "NAME")
	require.Contains(t, r.stdout, "spsc")
	require.Contains(t, r.stdout, "unreadable")
	r = ringctl(t, "", "ls", "--dir", dir, "--json")
	var ls []lsEntry
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ls))
	require.Len(t, ls, 3)
	require.Equal(t, "a", ls[0].Name)
	require.Greater(t, ls[0].DepthPercent, 0.0)
	require.NotEmpty(t, ls[2].Error)

	r = ringctl(t, "", "peek", "a", "-n", "2", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, `"one"`)
	require.NotContains(t, r.stdout, `"three"`)
	r = ringctl(t, "", "peek", "a", "--json", "--dir", dir)
	var peeked []peekRecord
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &peeked))
	require.Len(t, peeked, 3)
	require.Equal(t, "6f6e65", peeked[0].Hex)
	require.Equal(t, "one\ntwo\nthree\n", ringctl(t, "", "recv", "a", "-n", "3", "--dir", dir).stdout, "peek consumed nothing")

	r = ringctl(t, "", "doctor", "a", "--json", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	var doc doctorReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	require.True(t, doc.Healthy)

	r = ringctl(t, "", "watch", "a", "b", "--once", "--interval", "50ms", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "DEPTH")
	require.Contains(t, r.stdout, filepath.Join(dir, "b"))

	r = ringctl(t, "", "watch", "a", "--count", "2", "--interval", "20ms", "--json", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	frames := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, frames, 2)
	var frame []watchJSON
	require.NoError(t, json.Unmarshal([]byte(frames[1]), &frame))
	require.Equal(t, filepath.Join(dir, "a"), frame[0].Path)
	r = ringctl(t, "", "policy", "a", "--json", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	var pol map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &pol))
	require.Equal(t, "", pol["producers"])

	r = ringctl(t, "", "reset", "a", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	r = ringctl(t, "", "stat", "a", "--json", "--dir", dir)
	var st statReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	require.Zero(t, st.HighWater, "reset to the current depth, 0")

	for _, verb := range []string{"ls", "peek", "doctor", "reset", "serve", "watch"} {
		r := ringctl(t, "", verb, "--help")
		require.Zero(t, r.code, verb)
		require.Contains(t, r.stdout, "usage: ringctl "+verb)
	}
}

// TestDoctorRepairsDeadReservation: a producer process killed with a
// reservation in flight blocks an MPSC ring; doctor reports it and
// --repair skips it, and the messages behind it are delivered.
func TestDoctorRepairsDeadReservation(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "m", "--size", "4KiB", "--kind", "mpsc", "--producers", "2", "--dir", dir).code)
	path := filepath.Join(dir, "m")
	writeDeadReservation(t, path)
	require.Zero(t, ringctl(t, "after\n", "send", "m", "--dir", dir, "--id", "1").code)
	r := ringctl(t, "", "doctor", "m", "--dir", dir)
	require.Equal(t, 1, r.code, r.stdout)
	require.Contains(t, r.stdout, "dead producer")
	r = ringctl(t, "", "doctor", "m", "--repair", "--dir", dir)
	require.Zero(t, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "skipped 1 dead reservations")
	r = ringctl(t, "", "recv", "m", "-n", "1", "--timeout", "2s", "--dir", dir)
	require.Equal(t, "after\n", r.stdout)
	r = ringctl(t, "", "doctor", "m", "--dir", dir)
	require.Zero(t, r.code, r.stdout)
}

// TestCorruptSegmentEveryCommand: every command that reads a ring gives a
// clear error naming the field and the offset, never a panic.
func TestCorruptSegmentEveryCommand(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "c", "--size", "4KiB", "--dir", dir).code)
	f, err := os.OpenFile(filepath.Join(dir, "c"), os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0x7f}, 4096+17) // the ring's capacity field
	require.NoError(t, err)
	require.NoError(t, f.Close())
	for _, args := range [][]string{{"stat", "c"}, {"peek", "c"}, {"doctor", "c"}, {"reset", "c"}, {"watch", "c", "--once"}, {"recv", "c", "-n", "1"}, {"send", "c"}, {"policy", "c"}} {
		r := ringctl(t, "x\n", append(args, "--dir", dir)...)
		require.Equal(t, 1, r.code, "%v", args)
		require.Contains(t, r.stderr, "checksum at offset 60", "%v", args)
	}
	r := ringctl(t, "", "ls", "--dir", dir)
	require.Zero(t, r.code)
	require.Contains(t, r.stdout, "checksum at offset 60")
}

// TestServe scrapes a real `ringctl serve` process over HTTP while rings
// appear in and disappear from its directory.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RINGCTL_TEST_ARGS="+strings.Join([]string{"serve", "--listen", "127.0.0.1:0", "--dir", dir}, "\x1f"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	url := line[strings.Index(line, "http://"):]
	url = strings.TrimSpace(url)
	scrape := func() string {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.NotContains(t, scrape(), `ring="x"`)
	require.Zero(t, ringctl(t, "", "create", "x", "--size", "4KiB", "--timestamps", "--dir", dir).code)
	require.Zero(t, ringctl(t, "a\nb\n", "send", "x", "--dir", dir).code)
	body := scrape()
	require.Contains(t, body, `shmring_capacity_bytes{ring="x"} 4096`)
	require.Contains(t, body, `shmring_produced_messages_total{ring="x"} 2`)
	require.Contains(t, body, "shmring_unreadable_segments 0")
	require.Contains(t, body, "shmring_damaged_segments 0")
	require.Zero(t, ringctl(t, "", "recv", "x", "-n", "2", "--dir", dir).code)
	require.Contains(t, scrape(), `shmring_queue_delay_seconds_count{ring="x"} 2`)
	require.Zero(t, ringctl(t, "", "rm", "x", "--dir", dir).code)
	require.NotContains(t, scrape(), `ring="x"`)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "serve exits cleanly on SIGTERM")
}
