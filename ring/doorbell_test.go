package ring_test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestDoorbellFlag: flag bit 4 changes no layout version (the flag is the
// protection), combines with every kind and flag, and leaves line 15's
// words zero; an unknown flag bit (5) is still refused, with the mask this
// build knows in the error (0x1f; a build without the doorbell says 0xf).
func TestDoorbellFlag(t *testing.T) {
	for _, c := range []struct {
		cfg     ring.Config
		version uint32
	}{
		{ring.Config{Kind: ring.SPSC}, 1},
		{ring.Config{Kind: ring.SPSC, HeaderCommit: true}, 2},
		{ring.Config{Kind: ring.SPSC, Overwrite: true, Timestamps: true, Sequences: true}, 1},
		{ring.Config{Kind: ring.MPSC}, 1},
		{ring.Config{Kind: ring.MPSC, Overwrite: true}, 2},
	} {
		c.cfg.Capacity, c.cfg.Doorbell = 1<<12, true
		size, err := ring.Size(c.cfg)
		require.NoError(t, err)
		region := make([]byte, size)
		require.NoError(t, ring.Format(region, c.cfg))
		require.Equal(t, c.version, binary.LittleEndian.Uint32(region[8:]), "%+v", c.cfg)
		require.NotZero(t, binary.LittleEndian.Uint64(region[40:])&ring.FlagDoorbell)
		r, err := ring.Attach(region)
		require.NoError(t, err)
		require.True(t, r.Doorbell())
		bl := r.DoorbellLine()
		require.Zero(t, bl.ID.Load()+bl.Wakes.Load()+bl.Failures.Load())
		bl.ID.Store(7)
		require.Equal(t, uint64(7), binary.LittleEndian.Uint64(region[1920:]), "line 15 at region offset 1920")

		flags := binary.LittleEndian.Uint64(region[40:])
		binary.LittleEndian.PutUint64(region[40:], flags|1<<5)
		binary.LittleEndian.PutUint32(region[60:], crc32.Checksum(region[:60], crc32.MakeTable(crc32.Castagnoli)))
		_, err = ring.Attach(region)
		require.ErrorIs(t, err, ring.ErrIncompatible)
		require.ErrorContains(t, err, "this build knows 0x1f")
	}
}

// TestDoorbellFile: FormatDoorbell and AttachDoorbell agree; AttachDoorbell
// refuses the wrong size, magic, version and id with their sentinels.
func TestDoorbellFile(t *testing.T) {
	mem := make([]byte, ring.DoorbellSize)
	require.NoError(t, ring.FormatDoorbell(mem, 42))
	b, err := ring.AttachDoorbell(mem, 42)
	require.NoError(t, err)
	b.Seq.Add(1)
	b.Parked.Store(1)
	b.Wakes.Add(3)
	require.Equal(t, uint32(1), binary.LittleEndian.Uint32(mem[64:]))
	require.Equal(t, uint32(1), binary.LittleEndian.Uint32(mem[68:]))
	require.Equal(t, uint64(3), binary.LittleEndian.Uint64(mem[72:]))

	_, err = ring.AttachDoorbell(mem[:2048], 42)
	require.ErrorIs(t, err, ring.ErrCorrupt)
	_, err = ring.AttachDoorbell(mem, 43)
	require.ErrorIs(t, err, ring.ErrCorrupt)
	binary.LittleEndian.PutUint32(mem[8:], 2)
	_, err = ring.AttachDoorbell(mem, 42)
	require.ErrorIs(t, err, ring.ErrIncompatible)
	mem[0] = 'X'
	_, err = ring.AttachDoorbell(mem, 42)
	require.ErrorIs(t, err, ring.ErrCorrupt)
}
