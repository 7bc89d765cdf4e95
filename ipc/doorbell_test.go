package ipc_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// TestDoorbellHostileLine15: line 15 of a flagged ring names a doorbell
// that is not one a producer may ring (no such file, another user's file,
// a symbolic link to a real doorbell, the wrong size, magic, version or
// id): the producer keeps writing, wakes the ring's own word instead
// (line 5's seq and wake-ups move), counts one failure per id, and does not
// try the same id again within its retry interval (here an hour: a second
// wake-up adds no failure). A real doorbell is then rung: its parked flag
// cleared, its seq and wakes and line 15's wakes moved, line 5's seq moved
// without a wake-up. With nobody parked on the doorbell, nothing is rung.
func TestDoorbellHostileLine15(t *testing.T) {
	restore := ipc.BellRetry(time.Hour)
	defer restore()
	dir := t.TempDir()
	r, err := ipc.Create(filepath.Base(testutil.Name(t)), ipc.Config{Capacity: 1 << 16, Doorbell: true}, ipc.WithDir(dir))
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	p, err := r.Producer(nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	h := handle.Of(r)
	cw, bl := h.R.ConsumerWaitLine(), h.R.DoorbellLine()

	real, err := shm.CreateDoorbell(dir, ring.FormatDoorbell)
	require.NoError(t, err)
	defer func() { require.NoError(t, real.Close()) }()
	bell, err := ring.AttachDoorbell(real.Mem(), real.ID())
	require.NoError(t, err)

	// file writes a doorbell-named file for id with the given contents.
	file := func(id uint64, mem []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, shm.DoorbellName(id)), mem, 0o600))
	}
	valid := func(id uint64) []byte {
		mem := make([]byte, ring.DoorbellSize)
		require.NoError(t, ring.FormatDoorbell(mem, id))
		return mem
	}
	cases := []struct {
		name string
		make func(id uint64)
	}{
		{"no such file", func(uint64) {}},
		{"another user's", func(id uint64) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			file(id, valid(id))
			require.NoError(t, os.Chown(filepath.Join(dir, shm.DoorbellName(id)), 4242, 4242))
		}},
		{"a symbolic link to a real doorbell", func(id uint64) {
			require.NoError(t, os.Symlink(real.Path(), filepath.Join(dir, shm.DoorbellName(id))))
		}},
		{"wrong size", func(id uint64) { file(id, append(valid(id), make([]byte, 4096)...)) }},
		{"wrong magic", func(id uint64) { file(id, make([]byte, ring.DoorbellSize)) }},
		{"wrong version", func(id uint64) {
			mem := valid(id)
			binary.LittleEndian.PutUint32(mem[8:], 2)
			file(id, mem)
		}},
		{"wrong id", func(id uint64) { file(id, valid(id+1)) }},
	}
	msg := []byte("m")
	// wake writes a message with the consumer announced as parked.
	wake := func() {
		t.Helper()
		cw.Parked.Store(1)
		require.NoError(t, p.TryWrite(msg))
		require.Zero(t, cw.Parked.Load(), "the producer took the wake")
	}
	for i, tc := range cases {
		id := uint64(0x1000 + i)
		tc.make(id)
		bl.ID.Store(id)
		fails, seq, wakes := bl.Failures.Load(), cw.Seq.Load(), cw.Wakeups.Load()
		wake()
		require.Equal(t, fails+1, bl.Failures.Load(), "%s: counted", tc.name)
		require.Equal(t, seq+1, cw.Seq.Load(), "%s: the ring's own word bumped", tc.name)
		require.Equal(t, wakes+1, cw.Wakeups.Load(), "%s: and woken", tc.name)
		wake()
		require.Equal(t, fails+1, bl.Failures.Load(), "%s: not tried again within the retry interval", tc.name)
		require.Equal(t, wakes+2, cw.Wakeups.Load(), "%s: woken again", tc.name)
	}
	require.Zero(t, bell.Wakes.Load(), "the symbolic link was not followed")

	opens := ipc.BellOpens()
	bl.ID.Store(real.ID())
	bell.Parked.Store(1)
	seq, wakes, bseq := cw.Seq.Load(), cw.Wakeups.Load(), bell.Seq.Load()
	wake()
	require.Zero(t, bell.Parked.Load(), "the producer cleared the doorbell's flag")
	require.Equal(t, bseq+1, bell.Seq.Load())
	require.Equal(t, uint64(1), bell.Wakes.Load())
	require.Equal(t, uint64(1), bl.Wakes.Load())
	require.Equal(t, seq+1, cw.Seq.Load(), "line 5's seq moves too")
	require.Equal(t, wakes, cw.Wakeups.Load(), "no wake of line 5")
	require.Equal(t, opens+1, ipc.BellOpens())

	wake() // nobody parked on the doorbell: nothing rung, the mapping kept
	require.Equal(t, bseq+1, bell.Seq.Load())
	require.Equal(t, uint64(1), bl.Wakes.Load())
	require.Equal(t, opens+1, ipc.BellOpens())

	st, err := r.Stats()
	require.NoError(t, err)
	require.True(t, st.Doorbell)
	require.Equal(t, real.ID(), st.DoorbellID)
	require.Equal(t, uint64(1), st.DoorbellWakes)
	require.Equal(t, uint64(len(cases)), st.DoorbellFailures)
}

// TestDoorbellClearedByConsumer: a consumer taking the role of a flagged
// ring clears line 15's id (a dead set's must not outlive its role lock);
// an unflagged ring's line 15 is left alone.
func TestDoorbellClearedByConsumer(t *testing.T) {
	for _, flagged := range []bool{true, false} {
		r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1 << 12, Doorbell: flagged})
		require.NoError(t, err)
		testutil.SetRingWord(t, r.Path(), 1920, 0xdead)
		c, err := r.Consumer(nil)
		require.NoError(t, err)
		want := uint64(0xdead)
		if flagged {
			want = 0
		}
		require.Equal(t, want, testutil.RingWord(t, r.Path(), 1920), "flagged %v", flagged)
		require.NoError(t, c.Close())
		require.NoError(t, r.Close())
	}
}
