package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCreateWorldWritable (issue 13, item 7): create refuses a mode that
// every other command would refuse to open, unless --trust-owner says so;
// and the refusal of such a ring names the CLI flag, not the Go option.
func TestCreateWorldWritable(t *testing.T) {
	dir := t.TempDir()
	r := ringctl(t, "", "create", "R", "--size", "4KiB", "--mode", "0666", "--dir", dir)
	require.Equal(t, 2, r.code)
	require.Equal(t, "ringctl create: --mode 0666 lets any user write the ring, so every command would refuse to open it; use 0660 or 0640 to share it with a group, or add --trust-owner to create it anyway (commands that open it then need --trust-owner too)\nusage: ringctl "+commands["create"].usage+"\n", r.stderr)
	_, err := os.Stat(filepath.Join(dir, "R"))
	require.ErrorIs(t, err, os.ErrNotExist)

	r = ringctl(t, "", "create", "R", "--size", "4KiB", "--mode", "0666", "--trust-owner", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.NoError(t, os.Chmod(filepath.Join(dir, "R"), 0o666)) // whatever the umask did
	r = ringctl(t, "", "stat", "R", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "chmod o-w, or pass --trust-owner")
	require.NotContains(t, r.stderr, "TrustOwner")
	r = ringctl(t, "", "stat", "R", "--trust-owner", "--dir", dir)
	require.Zero(t, r.code, r.stderr)

	r = ringctl(t, "", "create", "G", "--size", "4KiB", "--mode", "0660", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
}
