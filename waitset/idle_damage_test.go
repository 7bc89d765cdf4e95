package waitset_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/waitset"
	"github.com/stretchr/testify/require"
)

// TestIdleMemberSeesDamage: a member whose consumer position word another
// process overwrites while the set sleeps (nothing to read: no read of the
// member would meet it) is dropped with ErrCorrupt when a sleep runs out,
// as a lone ipc consumer fails (ipc's TestIdleConsumerSeesPositionOverwritten);
// the other member goes on. Without the set's idle check the Read never
// ends: the damaged member's reads find an empty ring forever.
func TestIdleMemberSeesDamage(t *testing.T) {
	a := newRing(t, ipc.Config{Capacity: 1 << 12})
	b := newRing(t, ipc.Config{Capacity: 1 << 12})
	producer(t, a)
	pb := producer(t, b)
	s, ms := newSet(t, nil, a, b)
	ctx := ctxFor(t)
	done := make(chan error, 1)
	parks := s.Parks()
	go func() {
		_, err := s.Read(ctx, 1, func(*waitset.Member, []byte) {})
		done <- err
	}()
	waitFor(t, func() bool { return s.Parks() > parks }, "the set sleeps")
	testutil.SetRingWord(t, a.Path(), 256, 1<<64-1) // region 256: the consumer position
	err := <-done
	require.ErrorIs(t, err, ipc.ErrCorrupt)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	var me *waitset.MemberError
	require.True(t, errors.As(err, &me), "%v", err)
	require.Same(t, ms[0], me.Member)
	require.ErrorContains(t, err, "consumer position word at region offset 256")
	// The set goes on with b.
	require.NoError(t, pb.Write(ctx, []byte("b")))
	var got *waitset.Member
	n, err := s.Read(ctx, 1, func(m *waitset.Member, _ []byte) { got = m })
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Same(t, ms[1], got)
}
