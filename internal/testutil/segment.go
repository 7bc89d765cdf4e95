package testutil

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// RingWord reads the 64-bit little-endian word at offset off of the ring
// region (after the segment header) through the segment file at path: what
// another process sees of the segment.
func RingWord(t testing.TB, path string, off int64) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.LessOrEqual(t, shm.HeaderSize+off+8, int64(len(b)), "offset %d is past the ring region of %s", off, path)
	return binary.LittleEndian.Uint64(b[shm.HeaderSize+off:])
}

// SetRingWord writes v as the 64-bit little-endian word at offset off of the
// ring region (after the segment header) through the segment file at path:
// another process scribbling on the segment.
func SetRingWord(t testing.TB, path string, off int64, v uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	_, err = f.WriteAt(b[:], shm.HeaderSize+off)
	require.NoError(t, err)
}
