package ops_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestDoctorHealthy: rings of every kind with messages waiting are
// healthy, on a read-write and a read-only view, and Pending counts the
// messages.
func TestDoctorHealthy(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ipc.Config
	}{
		{"spsc", ipc.Config{Capacity: 4096}},
		{"header-commit", ipc.Config{Capacity: 4096, HeaderCommit: true}},
		{"mpsc-sequences", ipc.Config{Capacity: 4096, Kind: ipc.MPSC, Producers: 4, Sequences: true}},
		{"mpsc-drop-oldest", ipc.Config{Capacity: 4096, Kind: ipc.MPSC, Producers: 4, DropOldest: true}},
	} {
		cfg := tc.cfg
		t.Run(tc.name, func(t *testing.T) {
			r := create(t, cfg)
			produce(t, r, nil, "one", "two", "three")
			for _, view := range []*ipc.Ring{r, open(t, r.Path(), ipc.WithReadOnly())} {
				for _, repair := range []bool{false, true} {
					if repair && view != r {
						continue
					}
					d, err := ops.Doctor(view, repair)
					require.NoError(t, err)
					require.True(t, d.Healthy(), "%v", d.Problems)
					require.Equal(t, 3, d.Pending)
					require.False(t, d.Stuck)
					if cfg.Kind == ipc.MPSC {
						// The closed producer's slot: used, not held.
						require.Equal(t, []int{0}, d.DeadProducers)
					} else {
						require.Empty(t, d.DeadProducers)
					}
					require.Zero(t, d.Repaired)
				}
			}
			require.Equal(t, []string{"one", "two", "three"}, consume(t, r), "Doctor consumed nothing")
		})
	}
}

// TestDoctorDeadProducerRepair: a producer process killed with a
// reservation in flight blocks an MPSC ring. Doctor reports the dead slot
// and the stuck ring; its repair refuses a read-only ring (ErrReadOnly)
// and a ring with a live consumer (ErrBusy), then skips the reservation
// (counted lost in the dead slot), and the message behind it is delivered.
func TestDoctorDeadProducerRepair(t *testing.T) {
	r := create(t, ipc.Config{Kind: ipc.MPSC, Capacity: 4096, Producers: 2})
	killedClaimer(t, r.Path())
	produce(t, r, &ipc.ProducerConfig{ID: 2}, "after")
	ro := open(t, r.Path(), ipc.WithReadOnly())

	d, err := ops.Doctor(ro, false)
	require.NoError(t, err)
	require.False(t, d.Healthy())
	require.True(t, d.Stuck)
	require.Equal(t, []int{0, 1}, d.DeadProducers, "the killed one and the closed one")
	require.Zero(t, d.Pending, "the walk stops at the reservation")
	require.Len(t, d.Problems, 1, "%v", d.Problems)
	require.Contains(t, d.Problems[0], "dead producer")
	sl, err := ops.Slot(ro, 0)
	require.NoError(t, err)
	require.False(t, sl.Alive)
	require.NotZero(t, sl.PID)
	require.NotZero(t, sl.IntentLen, "the reservation in flight")

	_, err = ops.Doctor(ro, true)
	require.ErrorIs(t, err, ops.ErrReadOnly)

	c, err := r.Consumer(nil)
	require.NoError(t, err)
	_, err = ops.Doctor(r, true)
	require.ErrorIs(t, err, ipc.ErrBusy)
	require.NoError(t, c.Close())

	d, err = ops.Doctor(r, true)
	require.NoError(t, err)
	require.True(t, d.Stuck, "what it found before repairing")
	require.Equal(t, 1, d.Repaired)
	sl, err = ops.Slot(ro, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(1), sl.Lost)

	d, err = ops.Doctor(ro, false)
	require.NoError(t, err)
	require.True(t, d.Healthy(), "%v", d.Problems)
	require.Equal(t, 1, d.Pending)
	require.Equal(t, []int{0, 1}, d.DeadProducers, "the slots stay dead until producers take them")
	require.Equal(t, []string{"after"}, consume(t, r))
}

// TestDoctorDamaged: another process scribbles on the ring (a record
// header, a position, the segment header). Peek returns ipc.ErrCorrupt;
// Doctor reports the damage as a problem, with or without repair, and
// nothing panics; a damaged segment header makes Open (and List) return
// ipc.ErrCorrupt.
func TestDoctorDamaged(t *testing.T) {
	const capacity = 4096
	cases := []struct {
		name string
		off  func(dataOff int64) int64 // where to write, in the ring region
		word uint64
	}{
		// A data record whose length exceeds the ring's maximum message.
		{"record-length", func(d int64) int64 { return d }, 1<<48 | 1<<20},
		// Type 0 (no record) with bits set: not zeroed memory.
		{"record-type", func(d int64) int64 { return d }, 5 | 1<<40},
		// Reserved bits set in a data record's header.
		{"record-reserved", func(d int64) int64 { return d }, 1<<56 | 1<<48 | 3},
		// A producer position more than a capacity past the consumer's.
		{"positions", func(int64) int64 { return ring.ProducerLine }, 3 * capacity},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := create(t, ipc.Config{Capacity: capacity})
			produce(t, r, nil, "one", "two")
			h := ops.Header(r)
			dataOff := int64(h.BodySize - capacity)
			testutil.SetRingWord(t, r.Path(), tc.off(dataOff), tc.word)

			_, err := ops.Peek(r, 10)
			require.ErrorIs(t, err, ipc.ErrCorrupt)
			require.NotErrorIs(t, err, ops.ErrFault, "the memory was read: damage, not a fault")
			for _, repair := range []bool{false, true} {
				d, err := ops.Doctor(r, repair)
				require.NoError(t, err, "damage is a finding, not a failure to diagnose")
				require.False(t, d.Healthy())
				require.Contains(t, d.Problems[0], "damaged")
				require.Zero(t, d.Repaired)
			}
		})
	}
	t.Run("segment-header", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "r")
		r, err := ipc.Create(path, ipc.Config{Capacity: capacity})
		require.NoError(t, err)
		require.NoError(t, r.Close())
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte{0x7f}, 49) // the creation time, under the header checksum
		require.NoError(t, err)
		require.NoError(t, f.Close())
		_, err = ipc.Open(path)
		require.ErrorIs(t, err, ipc.ErrCorrupt)
		list, err := ops.List(dir)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.ErrorIs(t, list[0].Err, ipc.ErrCorrupt)
	})
}
