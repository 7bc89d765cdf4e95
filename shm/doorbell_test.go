package shm_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// TestDoorbellFiles: a created doorbell is named by its id, 4096 bytes,
// mode 0600 (or the Mode asked for), locked while open (alive, not
// removable as a leftover) and removed at Close; a doorbell file nobody
// holds is a dead set's and RemoveDoorbellLeftover (and
// RemoveDeadDoorbells) removes it, but never a symbolic link, another
// user's file or a file not named as a doorbell. OpenDoorbell refuses a
// symbolic link, the wrong size and the wrong owner.
func TestDoorbellFiles(t *testing.T) {
	dir := t.TempDir()
	d, err := shm.CreateDoorbell(dir, func(mem []byte, id uint64) error { mem[0] = 'x'; return nil }, shm.Mode(0o640))
	require.NoError(t, err)
	id, ok := shm.DoorbellID(filepath.Base(d.Path()))
	require.True(t, ok)
	require.Equal(t, d.ID(), id)
	fi, err := os.Stat(d.Path())
	require.NoError(t, err)
	require.Equal(t, int64(shm.DoorbellFileSize), fi.Size())
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	alive, err := shm.DoorbellAlive(d.Path())
	require.NoError(t, err)
	require.True(t, alive)
	require.ErrorIs(t, shm.RemoveDoorbellLeftover(d.Path()), shm.ErrBusy)

	o, err := shm.OpenDoorbell(dir, id, uint32(os.Geteuid()))
	require.NoError(t, err)
	require.Equal(t, byte('x'), o.Mem()[0], "the same file")
	require.Equal(t, 1, descriptorsOf(t, d.Path()), "the opener holds the mapping, not a descriptor: only the creator's (its lock)")
	require.NoError(t, o.Close())
	require.FileExists(t, d.Path(), "a producer's close removes nothing")
	_, err = shm.OpenDoorbell(dir, id, uint32(os.Geteuid())+1)
	require.ErrorIs(t, err, shm.ErrPermission)
	// Writable by others: refused, as a ring's file is (H36); group bits
	// are not checked.
	require.NoError(t, os.Chmod(d.Path(), 0o666))
	_, err = shm.OpenDoorbell(dir, id, uint32(os.Geteuid()))
	require.ErrorIs(t, err, shm.ErrPermission)
	require.NoError(t, os.Chmod(d.Path(), 0o660))
	o, err = shm.OpenDoorbell(dir, id, uint32(os.Geteuid()))
	require.NoError(t, err)
	require.NoError(t, o.Close())
	require.NoError(t, d.Close())
	require.NoFileExists(t, d.Path())

	// Leftovers of dead sets.
	dead := filepath.Join(dir, shm.DoorbellName(7))
	require.NoError(t, os.WriteFile(dead, make([]byte, shm.DoorbellFileSize), 0o600))
	alive, err = shm.DoorbellAlive(dead)
	require.NoError(t, err)
	require.False(t, alive)
	link := filepath.Join(dir, shm.DoorbellName(8))
	require.NoError(t, os.Symlink(dead, link))
	_, err = shm.OpenDoorbell(dir, 8, uint32(os.Geteuid()))
	require.ErrorIs(t, err, shm.ErrSymlink)
	require.Error(t, shm.RemoveDoorbellLeftover(link))
	small := filepath.Join(dir, shm.DoorbellName(9))
	require.NoError(t, os.WriteFile(small, make([]byte, 100), 0o600))
	_, err = shm.OpenDoorbell(dir, 9, uint32(os.Geteuid()))
	require.ErrorIs(t, err, shm.ErrGeometry)
	require.ErrorIs(t, shm.RemoveDoorbellLeftover(filepath.Join(dir, "shmring-doorbell-xyz")), shm.ErrBadName)
	n, err := shm.RemoveDeadDoorbells(dir)
	require.NoError(t, err)
	require.Equal(t, 2, n, "the two regular files")
	require.NoFileExists(t, dead)
	require.NoFileExists(t, small)
	_, err = os.Lstat(link)
	require.NoError(t, err, "the symbolic link is left")
}

// descriptorsOf counts this process's open descriptors on the file at path.
func descriptorsOf(t *testing.T, path string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}
