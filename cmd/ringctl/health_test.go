package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// TestCheck (issue 13, item 12): ringctl check exits 0 for a healthy
// ring and 3 with the reasons otherwise.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "R", "--size", "4KiB", "--pressure-high", "2KiB", "--dir", dir).code)

	r := ringctl(t, "", "check", "R", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "R: healthy\n", r.stdout)

	r = ringctl(t, "", "check", "R", "--consumer-alive", "--dir", dir)
	require.Equal(t, 3, r.code)
	require.Empty(t, r.stdout)
	require.Equal(t, "ringctl check: R is unhealthy: no consumer is attached\n", r.stderr)

	// 160 records of 16 bytes: 2.5 KiB, 62.5%: past the 2 KiB high level.
	require.Zero(t, ringctl(t, strings.Repeat("xxx\n", 160), "send", "R", "--dir", dir).code)
	r = ringctl(t, "", "check", "R", "--max-depth", "50%", "--dir", dir)
	require.Equal(t, 3, r.code)
	require.Equal(t, "ringctl check: R is unhealthy: pressure raised: depth 2.5 KiB is past the high level 2 KiB; depth 2.5 KiB (62.5%) is above --max-depth 50%\n", r.stderr)
	r = ringctl(t, "", "check", "R", "--max-depth", "3KiB", "--consumer-alive", "--json", "--dir", dir)
	require.Equal(t, 3, r.code)
	require.Equal(t, `{"ring":"R","healthy":false,"reasons":["no consumer is attached","pressure raised: depth 2.5 KiB is past the high level 2 KiB"]}`+"\n", r.stdout)

	for _, tc := range []struct{ args, stderr string }{
		{"--max-depth 0%", "ringctl check: invalid value \"0%\" for flag --max-depth: invalid depth \"0%\": want a percentage above 0 and at most 100, e.g. 80%, or a size such as 48KiB (see `ringctl check --help`)\n"},
		{"--window 1s", "ringctl check: --window goes with --max-delay\nusage: ringctl " + commands["check"].usage + "\n"},
		{"--max-delay 10ms", "ringctl check: --max-delay needs a ring whose records carry timestamps (ringctl create --timestamps); R has none\nusage: ringctl " + commands["check"].usage + "\n"},
	} {
		r = ringctl(t, "", append([]string{"check", "R", "--dir", dir}, strings.Fields(tc.args)...)...)
		require.Equal(t, 2, r.code, tc.args)
		require.Equal(t, tc.stderr, r.stderr, tc.args)
	}

	// --max-delay: messages pending and none delivered during the window.
	require.Zero(t, ringctl(t, "", "create", "T", "--size", "4KiB", "--timestamps", "--dir", dir).code)
	r = ringctl(t, "", "check", "T", "--max-delay", "1ms", "--window", "1ms", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Zero(t, ringctl(t, "a\nb\nc\n", "send", "T", "--dir", dir).code)
	r = ringctl(t, "", "check", "T", "--max-delay", "1ms", "--window", "2ms", "--dir", dir)
	require.Equal(t, 3, r.code)
	require.Equal(t, "ringctl check: T is unhealthy: no message was delivered in the last 2ms while 3 are pending (--max-delay 1ms)\n", r.stderr)
}

// TestUnhealthyDelay: the mean queueing delay over the window against
// --max-delay.
func TestUnhealthyDelay(t *testing.T) {
	c := healthCriteria{maxDelay: 10 * time.Millisecond, window: time.Second}
	before := ipc.Stats{Capacity: 4096, DelayCount: 10, DelaySum: 1000}
	after := before
	after.DelayCount, after.DelaySum = 14, 1000+4*uint64(20*time.Millisecond)
	require.Equal(t, []string{"mean queueing delay 20ms of the 4 messages delivered in the last 1s is above --max-delay 10ms"}, unhealthyReasons(after, &before, c))
	after.DelaySum = 1000 + 4*uint64(5*time.Millisecond)
	require.Empty(t, unhealthyReasons(after, &before, c))
}

// TestUnhealthyDelayDuplicates (issue 12): duplicates were counted in but
// are never read, so a ring whose only unread messages are duplicates has
// nothing pending and is not reported as stuck.
func TestUnhealthyDelayDuplicates(t *testing.T) {
	c := healthCriteria{maxDelay: time.Millisecond, window: time.Second}
	before := ipc.Stats{Capacity: 4096, MsgsIn: 5, MsgsOut: 3, Duplicates: 2}
	require.Empty(t, unhealthyReasons(before, &before, c))
	after := before
	after.MsgsIn = 6
	require.Equal(t, []string{"no message was delivered in the last 1s while 1 are pending (--max-delay 1ms)"}, unhealthyReasons(after, &before, c))
}

// TestServeHealthz (issue 13, item 12): /healthz and /healthz/RING answer
// 200 while the consumer (a real process) is alive and there is no
// pressure, 503 with a JSON reason otherwise, 404 for an unknown ring.
func TestServeHealthz(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "a", "--size", "4KiB", "--pressure-high", "2KiB", "--dir", dir).code)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk"), []byte("not a ring"), 0o600))
	mux := serveMux(dir, nil)

	code, body := get(t, mux, "/healthz/a")
	require.Equal(t, 503, code)
	require.Equal(t, `{"ring":"a","healthy":false,"reasons":["no consumer is attached"]}`+"\n", body)
	code, body = get(t, mux, "/healthz/nope")
	require.Equal(t, 404, code)
	require.Equal(t, `{"ring":"nope","healthy":false,"reasons":["no such ring in `+dir+`"]}`+"\n", body)

	// A consumer process: recv, until killed.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RINGCTL_TEST_ARGS="+strings.Join([]string{"recv", "a", "--dir", dir}, "\x1f"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Zero(t, ringctl(t, "hello\n", "send", "a", "--dir", dir).code)
	buf := make([]byte, len("hello\n"))
	_, err = out.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "hello\n", string(buf), "the consumer is attached: it read")

	code, body = get(t, mux, "/healthz/a")
	require.Equal(t, 200, code, body)
	require.Equal(t, `{"ring":"a","healthy":true}`+"\n", body)
	code, body = get(t, mux, "/healthz")
	require.Equal(t, 200, code, body)
	require.Equal(t, `{"healthy":true,"rings":[{"ring":"a","healthy":true}],"unreadable":1}`+"\n", body)

	// A second ring with pressure raised and no consumer.
	require.Zero(t, ringctl(t, "", "create", "b", "--size", "4KiB", "--pressure-high", "1KiB", "--dir", dir).code)
	require.Zero(t, ringctl(t, strings.Repeat("xxx\n", 100), "send", "b", "--dir", dir).code)
	code, body = get(t, mux, "/healthz")
	require.Equal(t, 503, code)
	require.Equal(t, `{"healthy":false,"rings":[{"ring":"a","healthy":true},{"ring":"b","healthy":false,"reasons":["no consumer is attached","pressure raised: depth 1.6 KiB is past the high level 1 KiB"]}],"unreadable":1}`+"\n", body)
}
