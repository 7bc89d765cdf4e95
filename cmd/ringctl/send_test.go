package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// sendLines returns n numbered lines.
func sendLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strings.Repeat("x", 3))
		b.WriteByte('\n')
	}
	return b.String()
}

// TestSendStopsWhenNobodyReads (issue 13, item 1): under a waiting policy
// the first timeout or dead peer ends send with exit status 3 and a
// message that gives the counts, the cause and the remedy; it does not
// wait again for every remaining line.
func TestSendStopsWhenNobodyReads(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "R", "--size", "4KiB", "--dir", dir).code)

	// 256 records of 16 bytes fill 4 KiB; 4 more lines remain.
	r := ringctl(t, sendLines(260), "send", "R", "--policy", "block", "--timeout", "20ms", "--dir", dir)
	require.Equal(t, 3, r.code, r.stderr)
	require.Empty(t, r.stdout)
	require.Equal(t, "ringctl send: sent 256 of 260: the ring stayed full for 20ms and no consumer is attached (none since creation); start one with `ringctl recv R`, or use --policy drop\n", r.stderr)

	// The default policy (hybrid) waits for a consumer for the peer
	// timeout once, not once per line.
	r = ringctl(t, sendLines(5), "send", "R", "--dir", dir)
	require.Equal(t, 3, r.code, r.stderr)
	require.Equal(t, "ringctl send: sent 0 of 5: the ring is full and no consumer is attached (none since creation); start one with `ringctl recv R`, wait longer for one with --peer-timeout (0: forever), or use --policy drop\n", r.stderr)

	// A consumer read some and left.
	r = ringctl(t, "", "recv", "R", "-n", "10", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	r = ringctl(t, sendLines(12)+"last line without newline", "send", "R", "--policy", "block", "--timeout", "20ms", "--dir", dir)
	require.Equal(t, 3, r.code, r.stderr)
	require.Equal(t, "ringctl send: sent 10 of 13: the ring stayed full for 20ms and no consumer is attached (consumers have read 10 messages before); start one with `ringctl recv R`, or use --policy drop\n", r.stderr)

	// A consumer is attached but does not read.
	ring, err := ipc.Open(filepath.Join(dir, "R"))
	require.NoError(t, err)
	defer ring.Close()
	c, err := ring.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	r = ringctl(t, sendLines(2), "send", "R", "--policy", "block", "--timeout", "20ms", "--dir", dir)
	require.Equal(t, 3, r.code, r.stderr)
	require.Equal(t, "ringctl send: sent 0 of 2: the ring stayed full for 20ms and its consumer is attached but did not make room; see `ringctl stat R`, wait longer with --timeout, or use --policy drop\n", r.stderr)
}

// TestSendBlockOverride: an operator's block override (ringctl policy
// --producers block) still ends a send that has no --timeout after block's
// 1 s, as the Block policy's own timeout did, with exit status 3; ipc's
// park under that override is bounded only by the caller's context.
func TestSendBlockOverride(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "R", "--size", "1KiB", "--dir", dir).code)
	require.Zero(t, ringctl(t, "", "policy", "R", "--producers", "block", "--dir", dir).code)
	// A consumer is attached but does not read: only the override's
	// limit can end the wait (not the peer timeout).
	ring, err := ipc.Open(filepath.Join(dir, "R"))
	require.NoError(t, err)
	defer ring.Close()
	c, err := ring.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	// 64 records of 16 bytes fill 1 KiB.
	r := ringctl(t, sendLines(66), "send", "R", "--policy", "park", "--dir", dir)
	require.Equal(t, 3, r.code, r.stderr)
	require.Equal(t, "ringctl send: sent 64 of 66: the ring stayed full for 1s and its consumer is attached but did not make room; see `ringctl stat R`, wait longer with --timeout, or use --policy drop\n", r.stderr)
}
