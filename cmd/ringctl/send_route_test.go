package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// routeRings creates n rings in dir, each with a consumer attached (not
// reading), and returns their names and consumers.
func routeRings(t *testing.T, dir string, n int) ([]string, []*ipc.Consumer) {
	var names []string
	var cs []*ipc.Consumer
	for i := 0; i < n; i++ {
		name := string(rune('A' + i))
		require.Zero(t, ringctl(t, "", "create", name, "--size", "64KiB", "--dir", dir).code)
		r, err := ipc.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		c, err := r.Consumer(nil)
		require.NoError(t, err)
		names, cs = append(names, name), append(cs, c)
	}
	return names, cs
}

func drain(t *testing.T, c *ipc.Consumer) []string {
	var got []string
	_, err := c.TryRead(1000, func(m []byte) { got = append(got, string(m)) })
	require.NoError(t, err)
	return got
}

// send --route: round robin spreads the lines and prints each ring's
// counters; a ring without a consumer is skipped.
func TestSendRouteRoundRobin(t *testing.T) {
	dir := t.TempDir()
	names, cs := routeRings(t, dir, 3)
	r := ringctl(t, "1\n2\n3\n4\n5\n6\n", "send", "--route", strings.Join(names, ","), "--by", "rr", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "RING  ROUTED  SPILLED  SKIPPED  HEALTH\n"+
		"A     2       0        0        healthy\n"+
		"B     2       0        0        healthy\n"+
		"C     2       0        0        healthy\n"+
		"dropped 0\n", r.stdout)
	require.Equal(t, []string{"1", "4"}, drain(t, cs[0]))
	require.Equal(t, []string{"2", "5"}, drain(t, cs[1]))

	require.NoError(t, cs[1].Close()) // B's consumer goes
	r = ringctl(t, "7\n8\n", "send", "--route", strings.Join(names, ","), "--by", "rr", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "B     0       0        1        dead\n")
}

// send --route --by key --key-field N: lines with the same Nth field go to
// the same ring, in order.
func TestSendRouteByKey(t *testing.T) {
	dir := t.TempDir()
	names, cs := routeRings(t, dir, 3)
	var in strings.Builder
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&in, "order %c %d\n", 'a'+i%5, i)
	}
	r := ringctl(t, in.String(), "send", "--route", strings.Join(names, ","), "--by", "key", "--key-field", "2", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	owner := map[string]int{}
	last := map[string]int{}
	for i, c := range cs {
		for _, line := range drain(t, c) {
			f := strings.Fields(line)
			if o, ok := owner[f[1]]; ok {
				require.Equal(t, o, i, "key %s on two rings", f[1])
			}
			owner[f[1]] = i
			n, err := strconv.Atoi(f[2])
			require.NoError(t, err)
			require.Less(t, last[f[1]], n+1, "key %s out of order", f[1])
			last[f[1]] = n + 1
		}
	}
	require.Len(t, owner, 5)
}

func TestSendRouteUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"send", "X", "--route", "A,B"},
		{"send", "--route", "A,B", "--by", "nope"},
		{"send", "--route", "A,B", "--key-field", "2"},
		{"send", "X", "--by", "rr"},
		{"send", "--route", "A,,B"},
		{"send"},
	} {
		r := ringctl(t, "", append(args, "--dir", dir)...)
		require.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
	}
}
