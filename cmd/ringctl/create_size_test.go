package main

import (
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/stretchr/testify/require"
)

// TestCreateSizeAdvice (issue 13, item 6): a --size that is not a power of
// two says what was parsed; a decimal (SI) unit whose binary twin would do
// gets "did you mean".
func TestCreateSizeAdvice(t *testing.T) {
	dir := t.TempDir()
	const rule = "the capacity must be a power of two of at least 1KiB, e.g. 64KiB or 1MiB"
	for _, tc := range []struct{ size, msg string }{
		{"64KB", "--size 64KB: 64KB is 64000 bytes (SI); did you mean 64KiB? (" + rule + ")"},
		{"1mb", "--size 1mb: 1mb is 1000000 bytes (SI); did you mean 1MiB? (" + rule + ")"},
		{"100KB", "--size 100KB: 100KB is 100000 bytes (SI); " + rule},
		{"3KiB", "--size 3KiB: 3KiB is 3072 bytes (3 KiB); " + rule},
		{"1000", "--size 1000: " + rule},
		{"512", "--size 512: " + rule},
	} {
		r := ringctl(t, "", "create", "R", "--size", tc.size, "--dir", dir)
		require.Equal(t, 2, r.code, tc.size)
		require.Equal(t, "ringctl create: "+tc.msg+"\nusage: ringctl "+commands["create"].usage+"\n", r.stderr, tc.size)
	}
	require.Empty(t, testutil.Leftovers())
	for _, size := range []string{"64KiB", "64K", "1MiB", "1M", "4096"} {
		r := ringctl(t, "", "create", "R"+size, "--size", size, "--dir", dir)
		require.Zero(t, r.code, r.stderr)
	}
}
