package ops_test

import (
	"context"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// allPolicies is every policy with its name, as the segment numbers them.
var allPolicies = []struct {
	p    ops.Policy
	name string
	n    uint8
}{
	{ops.Spin, "spin", 1}, {ops.Drop, "drop", 2}, {ops.Backoff, "backoff", 3}, {ops.Yield, "yield", 4},
	{ops.Park, "park", 5}, {ops.Block, "block", 6}, {ops.Hybrid, "hybrid", 7}, {ops.Overflow, "overflow", 8},
	{ops.DropOldest, "drop-oldest", 9},
}

// TestParsePolicy: every policy's name parses back to it, its number is
// the segment's, and an unknown name's error matches ErrInvalidPolicy and
// lists every name.
func TestParsePolicy(t *testing.T) {
	for _, tc := range allPolicies {
		require.Equal(t, tc.name, tc.p.String())
		require.Equal(t, tc.n, uint8(tc.p))
		p, err := ops.ParsePolicy(tc.name)
		require.NoError(t, err)
		require.Equal(t, tc.p, p)
	}
	require.Equal(t, "Policy(0)", ops.Policy(0).String())
	require.Equal(t, "Policy(42)", ops.Policy(42).String())
	for _, bad := range []string{"", "Spin", "drop_oldest", "Policy(1)", "nope"} {
		_, err := ops.ParsePolicy(bad)
		require.ErrorIs(t, err, ops.ErrInvalidPolicy, bad)
		require.NotContains(t, err.Error(), "side", "a name has no side")
		for _, tc := range allPolicies {
			require.Contains(t, err.Error(), tc.name, "the error lists every name")
		}
	}
}

// TestSetPolicy: an override set by SetPolicy shows in Stats by name,
// and 0 clears it; a consumer override that does not wait, drop-oldest on
// a ring without DropOldest and numbers that are no policy are refused
// with ErrInvalidPolicy, changing nothing; a read-only ring refuses with
// ErrReadOnly.
func TestSetPolicy(t *testing.T) {
	r := create(t, ipc.Config{Capacity: 4096})
	for _, tc := range allPolicies {
		cons := tc.p
		if cons == ops.Drop || cons == ops.Overflow || cons == ops.DropOldest {
			cons = ops.Park
		}
		prod := tc.p
		if prod == ops.DropOldest {
			continue
		}
		require.NoError(t, ops.SetPolicy(r, prod, cons))
		st, err := r.Stats()
		require.NoError(t, err)
		require.Equal(t, prod.String(), st.ProducerOverride)
		require.Equal(t, cons.String(), st.ConsumerOverride)
	}
	require.NoError(t, ops.SetPolicy(r, ops.Park, ops.Yield))
	for _, bad := range []struct {
		producers, consumer ops.Policy
		side                string // the side the error names
	}{
		{0, ops.Drop, "consumer's"}, {0, ops.Overflow, "consumer's"}, {0, ops.DropOldest, "consumer's"},
		{ops.DropOldest, 0, "producers'"}, {10, 0, "producers'"}, {0, 255, "consumer's"},
	} {
		err := ops.SetPolicy(r, bad.producers, bad.consumer)
		require.ErrorIs(t, err, ops.ErrInvalidPolicy, "%v", bad)
		require.Contains(t, err.Error(), "the "+bad.side+" policy", "%v: the error names the side", bad)
	}
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, "park", st.ProducerOverride, "a refused override changes nothing")
	require.Equal(t, "yield", st.ConsumerOverride)
	require.NoError(t, ops.SetPolicy(r, 0, 0))
	st, err = r.Stats()
	require.NoError(t, err)
	require.Empty(t, st.ProducerOverride)
	require.Empty(t, st.ConsumerOverride)

	ro := open(t, r.Path(), ipc.WithReadOnly())
	require.ErrorIs(t, ops.SetPolicy(ro, ops.Park, 0), ops.ErrReadOnly)

	do := create(t, ipc.Config{Capacity: 4096, DropOldest: true})
	require.NoError(t, ops.SetPolicy(do, ops.DropOldest, 0))
	st, err = do.Stats()
	require.NoError(t, err)
	require.Equal(t, "drop-oldest", st.ProducerOverride)
}

// TestSetPolicyDropOverride: a producer configured to wait (the default)
// drops instead, with ipc.ErrFull, once an operator overrides its ring's
// producers to drop; without the override the same write waits until its
// context ends.
func TestSetPolicyDropOverride(t *testing.T) {
	r := create(t, ipc.Config{Capacity: 1024, MaxMessage: 128})
	c, err := r.Consumer(nil) // attached, so a waiting producer waits for it
	require.NoError(t, err)
	defer c.Close()
	p, err := r.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	msg := make([]byte, 100)
	for {
		err := p.TryWrite(msg)
		if err != nil {
			require.ErrorIs(t, err, ipc.ErrFull)
			break
		}
	}
	require.NoError(t, ops.SetPolicy(r, ops.Drop, 0))
	require.ErrorIs(t, p.Write(ctx(t), msg), ipc.ErrFull, "the override drops")
	require.NoError(t, ops.SetPolicy(r, 0, 0))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, p.Write(cancelled, msg), context.Canceled, "without the override it waits, until its context ends")
}
