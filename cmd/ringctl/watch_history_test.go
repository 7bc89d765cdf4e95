package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

func TestSparkline(t *testing.T) {
	require.Equal(t, "▁▂▃▄▅▆▇█", sparkline([]float64{0, 1, 2, 3, 4, 5, 6, 7}, 7))
	require.Equal(t, "▁▁▁", sparkline([]float64{0, 0, 0}, 0), "a zero scale draws the floor")
	require.Equal(t, "█▁", sparkline([]float64{2, -1}, 1), "out of range is clamped")
	require.Equal(t, "", sparkline(nil, 1))
}

// TestWatchHistory (issue 13, item 11): watch shows, below the table, a
// sparkline of depth and of the in/out rates over the last minute (at
// most 60 marks, one per frame).
func TestWatchHistory(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "W", "--size", "4KiB", "--dir", dir).code)
	r, err := ipc.Open(filepath.Join(dir, "W"))
	require.NoError(t, err)
	defer r.Close()

	h := newHistory(1, time.Second)
	require.Equal(t, 60, h.n, "a minute of 1s frames")
	st := func(depth, in, out uint64) []ipc.Stats {
		return []ipc.Stats{{Capacity: 4096, Depth: depth, MsgsIn: in, MsgsOut: out}}
	}
	prev := st(0, 0, 0)
	for _, cur := range [][]ipc.Stats{st(0, 0, 0), st(1024, 100, 0), st(4096, 400, 100), st(2048, 400, 300)} {
		h.add(prev, cur, time.Second)
		prev = cur
	}
	var out bytes.Buffer
	h.render(stdio{out: &out}, []*ipc.Ring{r})
	path := r.Path()
	pad := strings.Repeat(" ", len(path))
	require.Equal(t, "\nhistory, last 1m0s (a mark per 1s):\n"+
		path+"  depth  ▁▃█▅  (0-100%)\n"+
		pad+"  in/s   ▁▃█▁  (max 300)\n"+
		pad+"  out/s  ▁▁▅█  (max 200)\n", out.String())

	// Only the last 60 marks are kept.
	for i := 0; i < 100; i++ {
		h.add(prev, prev, time.Second)
	}
	require.Len(t, h.depth[0], 60)

	// In watch itself: one mark per frame; --once has no history.
	res := ringctl(t, "", "watch", "W", "--count", "3", "--interval", "1ms", "--dir", dir)
	require.Zero(t, res.code, res.stderr)
	require.Equal(t, 3, strings.Count(res.stdout, "history, last 60ms (a mark per 1ms):\n"))
	require.Contains(t, res.stdout, path+"  depth  ▁▁▁  (0-100%)\n")
	res = ringctl(t, "", "watch", "W", "--once", "--interval", "1ms", "--dir", dir)
	require.Zero(t, res.code, res.stderr)
	require.NotContains(t, res.stdout, "history")
}
