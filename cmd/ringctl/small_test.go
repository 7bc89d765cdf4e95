package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSmallInconsistencies (issue 13, item 9).
func TestSmallInconsistencies(t *testing.T) {
	dir := t.TempDir()

	require.Zero(t, ringctl(t, "", "create", "R", "--size", "4KiB", "--dir", dir).code)
	t.Run("producers 0", func(t *testing.T) {
		// --producers 0 is refused, not silently 64.
		r := ringctl(t, "", "create", "m", "--size", "4KiB", "--kind", "mpsc", "--producers", "0", "--dir", dir)
		require.Equal(t, 2, r.code)
		require.Equal(t, "ringctl create: --producers 0: want 1 to 4096 (without the flag: 64)\nusage: ringctl "+commands["create"].usage+"\n", r.stderr)

	})
	t.Run("recv --wait block", func(t *testing.T) {
		// recv --wait block is in the help and works; non-waiting policies
		// are refused.
		r := ringctl(t, "", "recv", "--help")
		require.Contains(t, r.stdout, "hybrid, spin, yield, park, block (park; --timeout bounds either) or backoff")
		require.Zero(t, ringctl(t, "a\n", "send", "R", "--dir", dir).code)
		r = ringctl(t, "", "recv", "R", "-n", "1", "--wait", "block", "--dir", dir)
		require.Zero(t, r.code, r.stderr)
		require.Equal(t, "a\n", r.stdout)
		for _, w := range []string{"drop", "drop-oldest", "overflow"} {
			r = ringctl(t, "", "recv", "R", "--wait", w, "--dir", dir)
			require.Equal(t, 2, r.code, w)
			require.True(t, strings.HasPrefix(r.stderr, "ringctl recv: --wait \""+w+"\": want hybrid, spin, yield, park, block or backoff\n"), r.stderr)
		}

	})
	t.Run("watch --once", func(t *testing.T) {
		// watch --once and --count do not say "Ctrl-C to stop".
		r := ringctl(t, "", "watch", "R", "--once", "--interval", "1ms", "--dir", dir)
		require.Zero(t, r.code, r.stderr)
		first := strings.SplitN(r.stdout, "\n", 2)[0]
		require.Regexp(t, regexp.MustCompile(`^shmring watch, every 1ms   \d\d:\d\d:\d\d$`), first)
		r = ringctl(t, "", "watch", "R", "--count", "1", "--interval", "1ms", "--dir", dir)
		require.Zero(t, r.code, r.stderr)
		require.NotContains(t, r.stdout, "Ctrl-C")

	})
	t.Run("send drops", func(t *testing.T) {
		// send --policy drop that drops exits 4, not 1, with the counts.
		var in strings.Builder
		for i := 0; i < 300; i++ {
			in.WriteString("xxx\n")
		}
		r := ringctl(t, in.String(), "send", "R", "--policy", "drop", "--dir", dir)
		require.Equal(t, 4, r.code)
		require.Equal(t, "ringctl send: sent 256, dropped 44 (44 ring full, 0 larger than the 512 B maximum)\n", r.stderr)
	})
}
