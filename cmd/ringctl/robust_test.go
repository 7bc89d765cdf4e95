package main

import (
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/stretchr/testify/require"
)

// ringctlNoPanic is ringctl with a panic turned into a test failure, so a
// command that panics fails its test instead of the whole binary.
func ringctlNoPanic(t *testing.T, stdin string, args ...string) (r result) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("ringctl %v panicked: %v\n%s", args, p, debug.Stack())
		}
	}()
	return ringctl(t, stdin, args...)
}

// TestDamagedPositionsCommands: the commands of issue 12's reports, on
// rings whose positions another process changed. recv on a ring whose
// producer position was moved ahead, and send on a header-commit ring
// whose consumer position is unaligned, panicked; each now fails with the
// damage named, and works again once the word is repaired.
func TestDamagedPositionsCommands(t *testing.T) {
	for _, kind := range [][]string{{"--kind", "spsc"}, {"--header-commit"}, {"--kind", "mpsc"}, {"--kind", "mpsc", "--drop-oldest"}} {
		t.Run(strings.Join(kind, " "), func(t *testing.T) {
			dir := t.TempDir()
			require.Zero(t, ringctl(t, "", append([]string{"create", "d", "--size", "4KiB", "--dir", dir}, kind...)...).code)
			path := filepath.Join(dir, "d")
			r := ringctlNoPanic(t, "a\nb\n", "send", "d", "--dir", dir)
			require.Zero(t, r.code, r.stderr)
			for _, tc := range []struct {
				line int64
				bad  func(uint64) uint64
			}{
				{testutil.ProducerPosition, func(v uint64) uint64 { return v + 1<<20 }},
				{testutil.ProducerPosition, func(v uint64) uint64 { return v + 3 }},
				{testutil.ConsumerPosition, func(v uint64) uint64 { return v + 3 }},
				{testutil.ConsumerPosition, func(v uint64) uint64 { return v - 1<<20 }},
			} {
				good := testutil.RingWord(t, path, tc.line)
				testutil.SetRingWord(t, path, tc.line, tc.bad(good))
				for _, args := range [][]string{{"recv", "d", "-n", "1", "--timeout", "10ms"}, {"send", "d"}, {"peek", "d"}, {"doctor", "d"}, {"stat", "d"}} {
					r := ringctlNoPanic(t, "x\n", append(args, "--dir", dir)...)
					what := fmt.Sprintf("%v with the word at %d changed from %d to %d", args, tc.line, good, tc.bad(good))
					if args[0] == "stat" {
						require.Zero(t, r.code, "%s: %s", what, r.stderr) // shows the positions
						continue
					}
					require.Equal(t, 1, r.code, what)
					require.Contains(t, r.stdout+r.stderr, "corrupt segment", what)
				}
				testutil.SetRingWord(t, path, tc.line, good)
			}
			r = ringctlNoPanic(t, "", "recv", "d", "-n", "2", "--dir", dir)
			require.Zero(t, r.code, r.stderr)
			require.Equal(t, "a\nb\n", r.stdout, "repaired, the ring works")
		})
	}
}

// TestHeaderCommitDeadProducerCommands: a header-commit ring whose
// producer committed records and died before storing its position, the
// records read: the consumer is past the producer position, which is legal
// (docs/layout.md). doctor said "positions valid", then "corrupt segment";
// peek failed; a second recv panicked. Every command works on it.
func TestHeaderCommitDeadProducerCommands(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "h", "--size", "4KiB", "--header-commit", "--dir", dir).code)
	path := filepath.Join(dir, "h")
	require.Zero(t, ringctlNoPanic(t, "one\n", "send", "h", "--dir", dir).code)
	stored := testutil.RingWord(t, path, testutil.ProducerPosition)
	require.Zero(t, ringctlNoPanic(t, "two\nthree\n", "send", "h", "--dir", dir).code)
	r := ringctlNoPanic(t, "", "recv", "h", "-n", "3", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "one\ntwo\nthree\n", r.stdout)
	testutil.SetRingWord(t, path, testutil.ProducerPosition, stored) // "two" and "three": their position store never happened

	r = ringctlNoPanic(t, "", "doctor", "h", "--dir", dir)
	require.Zero(t, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "healthy")
	r = ringctlNoPanic(t, "", "peek", "h", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	r = ringctlNoPanic(t, "", "recv", "h", "-n", "1", "--timeout", "10ms", "--dir", dir)
	require.Equal(t, 3, r.code, "fewer than -n arrived: "+r.stderr)
	require.Contains(t, r.stderr, "got 0 of 1 messages")
	require.Empty(t, r.stdout, "nothing to read")
	r = ringctlNoPanic(t, "four\n", "send", "h", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	r = ringctlNoPanic(t, "", "recv", "h", "-n", "1", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "four\n", r.stdout)
}
