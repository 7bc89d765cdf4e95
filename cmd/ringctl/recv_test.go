package main

import (
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
