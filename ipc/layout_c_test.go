package ipc_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// TestLayoutReadFromC builds testdata/ringread.c, a consumer written from
// docs/layout.md alone, and has it read a ring that Go writes, through a
// wrap with padding: the document is enough to read a ring.
func TestLayoutReadFromC(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	bin := filepath.Join(t.TempDir(), "ringread")
	out, err := exec.Command(cc, "-O2", "-Wall", "-Werror", "-o", bin, "testdata/ringread.c").CombinedOutput()
	require.NoError(t, err, "%s", out)

	t.Run("plain", func(t *testing.T) { readFromC(t, bin) })
	t.Run("header-commit", func(t *testing.T) { readFromC(t, bin, ipc.WithHeaderCommit()) })
	t.Run("refuses-mpsc", func(t *testing.T) {
		r := newRing(t, ipc.WithKind(ipc.MPSC))
		out, err := exec.Command(bin, r.Path()).CombinedOutput()
		require.Error(t, err)
		require.Contains(t, string(out), "kind not spsc")
	})
}

func readFromC(t *testing.T, bin string, opts ...ipc.Option) {
	r := newRing(t, append([]ipc.Option{ipc.WithCapacity(1 << 10), ipc.WithMaxMessage(100)}, opts...)...)
	p, err := r.Producer(ipc.WithPolicy(ipc.Drop))
	require.NoError(t, err)
	defer p.Close()
	seq := 0
	for round := 0; round < 5; round++ {
		var want []string
		for {
			msg := fmt.Sprintf("round %d message %d %s", round, seq, strings.Repeat("x", seq%60))
			if err := p.Write([]byte(msg)); err != nil {
				require.ErrorIs(t, err, ipc.ErrFull)
				break
			}
			want = append(want, msg)
			seq++
		}
		got, err := exec.Command(bin, r.Path()).Output()
		require.NoError(t, err)
		require.Equal(t, strings.Join(want, "\n")+"\n", string(got), "round %d", round)
	}
	st, err := r.Stats()
	require.NoError(t, err)
	require.Zero(t, st.Depth, "the C reader released everything")
	require.Greater(t, st.ProducerPos, 4*r.Capacity(), "the ring wrapped several times")
}
