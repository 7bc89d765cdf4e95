package ops_test

import (
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// TestDoctorForgedReservationOfLiveProducer: another process forges a
// reservation of slot 0, whose producer (this test's) is alive and idle:
// slot 0's intent is set to the producer position with length 64 and the
// producer position moved on by 64. The consumer waits there for ever (a
// live producer's reservation is never skipped) while slot 1 writes
// behind it. Doctor said "0 messages pending", healthy, and nothing more;
// it now notes the stall, naming slot 0, and the bytes behind the
// reservation. Without the
// forgery the idle producer is no problem.
func TestDoctorForgedReservationOfLiveProducer(t *testing.T) {
	r := create(t, ipc.Config{Kind: ipc.MPSC, Capacity: 4096, Producers: 2})
	idle, err := r.Producer(&ipc.ProducerConfig{ID: 1})
	require.NoError(t, err)
	defer func() { require.NoError(t, idle.Close()) }()
	require.NoError(t, idle.Write(ctx(t), []byte("before")))
	require.Equal(t, []string{"before"}, consume(t, r))
	d, err := ops.Doctor(r, false)
	require.NoError(t, err)
	require.True(t, d.Healthy(), "%v", d.Problems)
	require.False(t, d.Stalled)

	const slot0 = 4096 // region offset of slot 0 (docs/layout.md)
	p := testutil.RingWord(t, r.Path(), testutil.ProducerPosition)
	testutil.SetRingWord(t, r.Path(), slot0+32, 64)
	testutil.SetRingWord(t, r.Path(), slot0+24, p)
	testutil.SetRingWord(t, r.Path(), testutil.ProducerPosition, p+64)
	produce(t, r, &ipc.ProducerConfig{ID: 2}, "behind1", "behind2")

	for _, view := range []*ipc.Ring{r, open(t, r.Path(), ipc.WithReadOnly())} {
		d, err = ops.Doctor(view, false)
		require.NoError(t, err)
		// A note, not a problem: a live producer may hold a claim that
		// long on purpose (TestPIDNamespaceClaimHeld), and is never skipped.
		require.True(t, d.Healthy(), "%v", d.Problems)
		require.False(t, d.Damaged)
		require.False(t, d.Stuck, "slot 0's producer is alive")
		require.True(t, d.Stalled)
		require.Equal(t, 0, d.StalledSlot)
		require.Zero(t, d.Pending)
		require.Equal(t, p, d.Waiting)
		require.NotZero(t, d.Behind, "slot 1's records lie behind the reservation")
		require.Len(t, d.Notes, 1, "%v", d.Notes)
		require.Contains(t, d.Notes[0], "live producer slot 0")
		require.Contains(t, d.Notes[0], "restart slot 0's process")
		require.NoError(t, ops.Validate(view), "a stall is not damage")
	}
}

// TestValidate: Validate passes healthy rings of each kind and reports,
// as ipc.ErrCorrupt, what a consumer would refuse at start.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ipc.Config
		off  int64
		v    func(uint64) uint64
	}{
		{"spsc unaligned producer", ipc.Config{Capacity: 4096}, testutil.ProducerPosition, func(v uint64) uint64 { return v + 3 }},
		{"mpsc consumer ahead", ipc.Config{Capacity: 4096, Kind: ipc.MPSC}, testutil.ConsumerPosition, func(v uint64) uint64 { return v + 1<<20 }},
		{"drop-oldest zeroing mark", ipc.Config{Capacity: 4096, Kind: ipc.MPSC, DropOldest: true}, 552, func(uint64) uint64 { return 0xf16aa73e10c3d8c4 }},
		{"spsc delivered past begun", ipc.Config{Capacity: 4096, Sequences: true}, 560, func(v uint64) uint64 { return 1 << 40 }},
		{"mpsc delivered past begun", ipc.Config{Capacity: 4096, Kind: ipc.MPSC, Sequences: true}, 4096 + 104, func(v uint64) uint64 { return 1 << 40 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := create(t, tc.cfg)
			produce(t, r, nil, "one", "two")
			ro := open(t, r.Path(), ipc.WithReadOnly())
			require.NoError(t, ops.Validate(ro))
			good := testutil.RingWord(t, r.Path(), tc.off)
			testutil.SetRingWord(t, r.Path(), tc.off, tc.v(good))
			err := ops.Validate(ro)
			require.ErrorIs(t, err, ipc.ErrCorrupt)
			d, err := ops.Doctor(ro, false)
			require.NoError(t, err)
			require.True(t, d.Damaged, "%v", d.Problems)
			testutil.SetRingWord(t, r.Path(), tc.off, good)
			require.NoError(t, ops.Validate(ro))
		})
	}
}
