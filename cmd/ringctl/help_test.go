package main

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFlagErrorsAndHelp (issue 13, item 5): a bad flag is one line with a
// hint and exit 2; no arguments print the overview on stderr (exit 2);
// help is per command, on stdout; version exists.
func TestFlagErrorsAndHelp(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"stat", "R", "--bogus"}, "ringctl stat: unknown flag --bogus (see `ringctl stat --help`)\n"},
		{[]string{"stat", "-bogus", "R"}, "ringctl stat: unknown flag --bogus (see `ringctl stat --help`)\n"},
		{[]string{"watch", "R", "--bogus"}, "ringctl watch: unknown flag --bogus (see `ringctl watch --help`)\n"},
		{[]string{"create", "R", "--size"}, "ringctl create: flag --size needs a value (see `ringctl create --help`)\n"},
		{[]string{"recv", "R", "--timeout", "soon"}, "ringctl recv: invalid value \"soon\" for flag --timeout: invalid duration \"soon\": want e.g. 500ms, 2s, 1m or a number of seconds (see `ringctl recv --help`)\n"},
		{[]string{"frobnicate"}, "ringctl: unknown command \"frobnicate\" (see `ringctl --help`)\n"},
		{[]string{"help", "frobnicate"}, "ringctl help: unknown command \"frobnicate\" (see `ringctl --help`)\n"},
	} {
		r := ringctl(t, "", tc.args...)
		require.Equal(t, 2, r.code, "%v", tc.args)
		require.Empty(t, r.stdout, "%v", tc.args)
		require.Equal(t, tc.stderr, r.stderr, "%v", tc.args)
	}

	r := ringctl(t, "")
	require.Equal(t, 2, r.code)
	require.Empty(t, r.stdout, "usage shown for a mistake goes to stderr")
	require.True(t, strings.HasPrefix(r.stderr, "ringctl: create, inspect, feed and drain shmring rings\n"), r.stderr)
	require.Contains(t, r.stderr, "  ringctl version  print the module version and VCS revision\n")

	r = ringctl(t, "", "help", "rm")
	require.Zero(t, r.code)
	require.Empty(t, r.stderr)
	require.Equal(t, `usage: ringctl rm NAME [--force] [--dir DIR]

remove a ring.

flags:
  -dir string
    	directory for bare names (default $SHMRING_DIR or /dev/shm)
  -force
    	remove the ring even while live processes hold it (they carry on in the removed file, unseen)
  -trust-owner
    	open a ring owned by another user or writable by others
`, r.stdout)
	require.Equal(t, r, ringctl(t, "", "rm", "--help"), "help rm and rm --help agree")

	r = ringctl(t, "", "version")
	require.Zero(t, r.code, r.stderr)
	require.True(t, strings.HasPrefix(r.stdout, "ringctl github.com/shmring/shmring "), r.stdout)
}

func TestFormatVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/shmring/shmring", Version: "v0.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "76c4ccf0123456789abcdef0123456789abcdef0"}, {Key: "vcs.time", Value: "2026-11-30T05:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	require.Equal(t, "ringctl github.com/shmring/shmring v0.4.0\nrevision 76c4ccf0123456789abcdef0123456789abcdef0 2026-11-30T05:00:00Z (modified)\ngo go1.26.8\n", formatVersion(bi))
	bi.Settings = nil
	bi.Main.Version = "(devel)"
	require.Equal(t, "ringctl github.com/shmring/shmring (devel)\nrevision unknown (built without VCS information)\ngo go1.26.8\n", formatVersion(bi))
}
