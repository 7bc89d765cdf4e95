package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/stretchr/testify/require"
)

// lines returns "1\n2\n...n\n", as seq 1 n prints.
func lines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.String()
}

// TestCheckAndDoctorSeeDamage: an outside tester's single-word writes to
// live segments. check, serve's /healthz and doctor said healthy (doctor:
// "positions valid", then the damage) and doctor --repair said it skipped
// 0 reservations. Now check and /healthz report "corrupt: ...", doctor
// says the ring is damaged, and --repair says it cannot repair it.
func TestCheckAndDoctorSeeDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		create []string
		send   []string
		off    int64
		v      uint64
		want   string
	}{
		{"unaligned producer position", nil, nil, testutil.ProducerPosition, 0x662be62138fb003d, "inconsistent with producer position"},
		{"drop-oldest zeroing mark", []string{"--kind", "mpsc", "--drop-oldest"}, []string{"--policy", "drop-oldest"}, 552, 0xf16aa73e10c3d8c4, "zeroing mark"},
		{"delivered past begun", []string{"--sequences"}, nil, 560, 1 << 40, "past the last sequence begun"},
		{"mpsc delivered past begun", []string{"--kind", "mpsc", "--sequences"}, nil, 4096 + 104, 1 << 40, "past its last sequence begun"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x")
			r := ringctl(t, "", append([]string{"create", "x", "--size", "64KiB", "--dir", dir}, tc.create...)...)
			require.Zero(t, r.code, r.stderr)
			r = ringctl(t, lines(100), append([]string{"send", "x", "--dir", dir}, tc.send...)...)
			require.Zero(t, r.code, r.stderr)
			r = ringctl(t, "", "check", "x", "--dir", dir)
			require.Zero(t, r.code, "healthy before: %s", r.stderr)
			r = ringctl(t, "", "doctor", "x", "--dir", dir)
			require.Zero(t, r.code, "healthy before: %s", r.stdout)

			testutil.SetRingWord(t, path, tc.off, tc.v)
			r = ringctl(t, "", "check", "x", "--dir", dir)
			require.Equal(t, exitStopped, r.code, r.stdout+r.stderr)
			require.Contains(t, r.stderr, "unhealthy: corrupt: ")
			require.Contains(t, r.stderr, tc.want)
			require.Contains(t, r.stderr, "remove and recreate it")

			code, body := get(t, serveMux(dir, nil), "/healthz/x")
			require.Equal(t, 503, code, body)
			require.Contains(t, body, "corrupt: ")
			code, body = get(t, serveMux(dir, nil), "/healthz")
			require.Equal(t, 503, code, body)
			require.Contains(t, body, tc.want)
			code, body = get(t, serveMux(dir, nil), "/metrics")
			require.Equal(t, 200, code, body)
			require.Contains(t, body, "shmring_damaged_segments 1")

			r = ringctl(t, "", "doctor", "x", "--dir", dir)
			require.Equal(t, 1, r.code, r.stdout)
			require.NotContains(t, r.stdout, "positions valid")
			require.Contains(t, r.stdout, "damaged")
			require.Contains(t, r.stdout, tc.want)
			r = ringctl(t, "", "doctor", "x", "--repair", "--dir", dir)
			require.Equal(t, 1, r.code, r.stdout)
			require.Contains(t, r.stdout, "cannot repair a damaged ring")
			require.NotContains(t, r.stdout, "skipped")

			// ls shows the damage on the ring's row, and in its JSON.
			r = ringctl(t, "", "ls", "--dir", dir)
			require.Zero(t, r.code, r.stderr)
			require.Contains(t, r.stdout, "(damaged: ")
			require.Contains(t, r.stdout, tc.want)
			r = ringctl(t, "", "ls", "--json", "--dir", dir)
			require.Zero(t, r.code, r.stderr)
			require.Contains(t, r.stdout, `"damage": "`)
		})
	}
}

// TestCorruptErrorsSayWhatToDo: ringctl's errors matching ipc.ErrCorrupt
// (a damaged record header, header checksum, magic) end with one remedy
// sentence; one that carries its own (a truncated file) gets none more.
func TestCorruptErrorsSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path string)
		cmd   string
		want  string
	}{
		{"record header", func(t *testing.T, path string) {
			testutil.SetRingWord(t, path, 4096, 0x8000000000000000) // the first record's header (SPSC data offset 4096)
		}, "recv", "has type 0 but is not zero"},
		{"header checksum", func(t *testing.T, path string) { writeAt(t, path, 49, 0x7f) }, "stat", "header checksum"},
		{"magic", func(t *testing.T, path string) { writeAt(t, path, 0, 'X') }, "stat", "if NAME is a ring"},
		{"truncated", func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 100)) }, "stat", "recreate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x")
			require.Zero(t, ringctl(t, "", "create", "x", "--size", "4KiB", "--dir", dir).code)
			require.Zero(t, ringctl(t, "a\n", "send", "x", "--dir", dir).code)
			tc.spoil(t, path)
			args := []string{tc.cmd, "x", "--dir", dir}
			if tc.cmd == "recv" {
				args = append(args, "-n", "1", "--timeout", "10ms")
			}
			r := ringctl(t, "", args...)
			require.Equal(t, 1, r.code, r.stdout+r.stderr)
			require.Contains(t, r.stderr, tc.want)
			require.Equal(t, 1, strings.Count(r.stderr, "recreate"), "one remedy: %s", r.stderr)
			if tc.name != "truncated" {
				require.Contains(t, r.stderr, "stop every process using it, run `ringctl doctor NAME` for what is wrong, then remove and recreate it (ringctl rm NAME; messages still in it are lost)")
			}
			r = ringctl(t, "", "doctor", "x", "--dir", dir)
			require.Equal(t, 1, r.code)
			require.Equal(t, 1, strings.Count(r.stdout+r.stderr, "recreate"), "one remedy: %s", r.stdout+r.stderr)
			require.NotContains(t, r.stderr, "run `ringctl doctor", "doctor does not send you to doctor")
		})
	}
}

// writeAt writes the byte b at offset off of the file at path.
func writeAt(t *testing.T, path string, off int64, b byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt([]byte{b}, off)
	require.NoError(t, err)
}

// TestBridgeHeartbeatInFuture: a bridge block whose heartbeat word is far
// in the future (line 13 +0 written by another process) printed
// "heartbeat -2063140h31m56.782s ago"; it now says the heartbeat is in the
// future, and why it is stale.
func TestBridgeHeartbeatInFuture(t *testing.T) {
	var b strings.Builder
	printBridges(&b, []bridgeReport{{Direction: "in", Stale: true, HeartbeatAge: -7.4e9}})
	require.Contains(t, b.String(), "heartbeat      in the future (clock skew or a damaged word)\n")
	require.Contains(t, b.String(), "bridge in (stream → ring): stale: its heartbeat is in the future (clock skew or a damaged word)\n")
	require.NotContains(t, b.String(), "ago")
	b.Reset()
	printBridges(&b, []bridgeReport{{Direction: "in", Stale: true, HeartbeatAge: 7}})
	require.Contains(t, b.String(), "heartbeat      7s ago\n")
	require.Contains(t, b.String(), "stale: no heartbeat for 5 s or more")
}

// TestSendFullOfDamagedRing: a full ring whose consumer died of damage.
// send advised "start one with `ringctl recv R`", which then failed with
// the damage; it now says no consumer can start, names the damage and
// what to do.
func TestSendFullOfDamagedRing(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "R", "--size", "4KiB", "--dir", dir).code)
	r := ringctl(t, sendLines(256), "send", "R", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	testutil.SetRingWord(t, filepath.Join(dir, "R"), 4096, 0x8000000000000000) // the first record's header
	r = ringctl(t, sendLines(1), "send", "R", "--policy", "block", "--timeout", "10ms", "--dir", dir)
	require.Equal(t, 3, r.code, r.stderr)
	require.Contains(t, r.stderr, "no consumer is attached, and none can start: ")
	require.Contains(t, r.stderr, "has type 0 but is not zero")
	require.Contains(t, r.stderr, "then remove and recreate it (ringctl rm R; messages still in it are lost)")
	require.NotContains(t, r.stderr, "ringctl recv")
}
