package ops_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// TestList: a directory with a ring (one named with a dot too), files
// that are not rings, the temporary file of a create in progress and the
// leftover of a killed one, and a subdirectory. List reads the rings'
// counters, gives each other file its error (ipc.ErrCorrupt), reports the
// temporary files as Creating with whether their creator runs, skips the
// directory, and sorts by name.
func TestList(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"ring", ".dotted"} {
		r, err := ipc.Create(filepath.Join(dir, name), ipc.Config{Capacity: 4096, Kind: ipc.MPSC, Producers: 2})
		require.NoError(t, err)
		produce(t, r, nil, "one", "two")
		require.NoError(t, r.Close())
	}
	junk := make([]byte, 8192)
	for i := range junk {
		junk[i] = byte(i)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk"), junk, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tiny"), []byte("hi"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "subdir"), 0o700))
	// A leftover of a create killed before it published "gone": nobody
	// holds its creation lock.
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".gone.creating-0123456789abcdef"), junk, 0o600))
	// A create of "busy" in progress, in a child stopped inside Create.
	testutil.StartHangInCreate(t, childEnv+"=hang-create", "OPS_T_PATH="+filepath.Join(dir, "busy"))

	list, err := ops.List(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range list {
		names = append(names, e.Name)
		require.Equal(t, filepath.Join(dir, e.Name), e.Path)
	}
	require.Len(t, names, 6, "%q", names)
	require.Regexp(t, `^\.busy\.creating-[0-9a-f]{16}$`, names[0])
	require.Equal(t, []string{".dotted", ".gone.creating-0123456789abcdef", "junk", "ring", "tiny"}, names[1:])
	byName := map[string]ops.Entry{}
	for _, e := range list {
		byName[e.Name] = e
	}
	for _, name := range []string{"ring", ".dotted"} {
		e := byName[name]
		require.NoError(t, e.Err)
		require.False(t, e.Creating)
		require.Equal(t, ipc.MPSC, e.Stats.Kind)
		require.Equal(t, uint64(2), e.Stats.MsgsIn)
		require.Equal(t, 2, e.Stats.Slots)
	}
	for _, name := range []string{"junk", "tiny"} {
		require.ErrorIs(t, byName[name].Err, ipc.ErrCorrupt, name)
		require.False(t, byName[name].Creating)
	}
	busy := list[0]
	require.True(t, busy.Creating)
	require.Equal(t, "busy", busy.Ring)
	require.True(t, busy.CreatorAlive)
	require.NoError(t, busy.Err)
	gone := byName[".gone.creating-0123456789abcdef"]
	require.True(t, gone.Creating)
	require.Equal(t, "gone", gone.Ring)
	require.False(t, gone.CreatorAlive)
	require.NoError(t, gone.Err)

	_, err = ops.List(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
