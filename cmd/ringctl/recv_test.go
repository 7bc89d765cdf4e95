package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecvFewerThanN (issue 13, item 2): recv -n N whose --timeout passes
// before N messages arrived prints what came and exits 3, saying how many.
func TestRecvFewerThanN(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "R", "--size", "4KiB", "--dir", dir).code)
	require.Zero(t, ringctl(t, "one\n", "send", "R", "--dir", dir).code)
	r := ringctl(t, "", "recv", "R", "-n", "5", "--timeout", "30ms", "--dir", dir)
	require.Equal(t, 3, r.code, r.stderr)
	require.Equal(t, "one\n", r.stdout)
	require.Equal(t, "ringctl recv: got 1 of 5 messages: none arrived for 30ms\n", r.stderr)

	// Without -n, the timeout is how recv ends: exit 0.
	require.Zero(t, ringctl(t, "two\n", "send", "R", "--dir", dir).code)
	r = ringctl(t, "", "recv", "R", "--timeout", "30ms", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "two\n", r.stdout)
	require.Empty(t, r.stderr)

	// N arrived: exit 0.
	require.Zero(t, ringctl(t, "a\nb\n", "send", "R", "--dir", dir).code)
	r = ringctl(t, "", "recv", "R", "-n", "2", "--timeout", "30ms", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "a\nb\n", r.stdout)
}

// TestRecvSet (issue 16): recv --set consumes several rings as one wait
// set, by names or a glob; --with-name prefixes each line with its ring's
// name; each ring's lines keep their order.
func TestRecvSet(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"app-1", "app-2", "other"} {
		require.Zero(t, ringctl(t, "", "create", name, "--size", "4KiB", "--dir", dir).code)
		require.Zero(t, ringctl(t, name+" a\n"+name+" b\n", "send", name, "--dir", dir).code)
	}
	r := ringctl(t, "", "recv", "--set", "app-*,other", "--with-name", "-n", "6", "--timeout", "30s", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.ElementsMatch(t, []string{
		"app-1: app-1 a", "app-1: app-1 b", "app-2: app-2 a", "app-2: app-2 b", "other: other a", "other: other b",
	}, lines)
	perRing := map[string][]string{}
	for _, l := range lines {
		name, _, _ := strings.Cut(l, ": ")
		perRing[name] = append(perRing[name], l)
	}
	for name, ls := range perRing {
		require.Equal(t, []string{name + ": " + name + " a", name + ": " + name + " b"}, ls, "in order")
	}
	// On exit, the set's counters on stderr: a line per member, then the set's.
	errLines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	require.Len(t, errLines, 5, r.stderr)
	require.Equal(t, []string{"MEMBER", "MESSAGES", "BYTES", "TURNS", "BUDGET-SPENT", "WAKEUPS", "PEER-DEAD"}, strings.Fields(errLines[0]))
	for i, name := range []string{"app-1", "app-2", "other"} {
		f := strings.Fields(errLines[1+i])
		require.Equal(t, []string{name, "2", "14"}, f[:3], "%s: 2 messages of 7 bytes", name)
	}
	require.Regexp(t, `^set: sleeps \d+, wakeups \d+, spurious \d+, timeouts \d+, peer-dead reports 0, dropped 0, doorbell ids restored 0, missed wake-ups 0$`, errLines[4])

	// --stats DUR prints them while it runs too (here: at least once
	// before --timeout, whose deadline is later), and on exit.
	r = ringctl(t, "", "recv", "--set", "app-1", "--stats", "1ms", "--timeout", "200ms", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.GreaterOrEqual(t, strings.Count(r.stderr, "\nset: sleeps "), 2, r.stderr)
	// A tick ends a sleep at the Read's deadline: not a sleep that ran its
	// whole slice (H36, finding 3). Every sleep here is cut by a tick or
	// --timeout, so none is a timeout.
	require.NotRegexp(t, `timeouts [1-9]`, r.stderr)
	require.Regexp(t, `timeouts 0`, r.stderr)
	r = ringctl(t, "", "recv", "app-1", "--stats", "1s", "--dir", dir)
	require.Equal(t, 2, r.code, "--stats without --set: usage")

	// Without --with-name, the bare messages; --timeout ends it (exit 0).
	require.Zero(t, ringctl(t, "x\n", "send", "app-2", "--dir", dir).code)
	r = ringctl(t, "", "recv", "--set", "app-1,app-2", "--timeout", "30ms", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "x\n", r.stdout)
	// -n not reached: exit 3, as for one ring.
	r = ringctl(t, "", "recv", "--set", "app-1,app-2", "-n", "1", "--timeout", "30ms", "--dir", dir)
	require.Equal(t, 3, r.code, r.stderr)

	// --with-name works for one ring too.
	require.Zero(t, ringctl(t, "y\n", "send", "other", "--dir", dir).code)
	r = ringctl(t, "", "recv", "other", "--with-name", "-n", "1", "--timeout", "30s", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "other: y\n", r.stdout)

	r = ringctl(t, "", "recv", "other", "--set", "app-1", "--dir", dir)
	require.Equal(t, 2, r.code, "NAME and --set: usage")
	r = ringctl(t, "", "recv", "--set", "nope-*", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `no ring matches "nope-*"`)
	r = ringctl(t, "", "recv", "--set", "app-1,,other", "--dir", dir)
	require.Equal(t, 2, r.code)
	r = ringctl(t, "", "recv", "--dir", dir)
	require.Equal(t, 2, r.code, "no NAME and no --set")
	require.Contains(t, r.stderr, "missing ring NAME")
}
