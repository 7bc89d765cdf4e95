package ops_test

import (
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// TestPeek: Peek copies the waiting messages out, oldest first, without
// consuming them, on a read-write and a read-only view; Seq and Time are
// filled in rings that record them (Time as Unix ns), 0 elsewhere; max
// bounds the result.
func TestPeek(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ipc.Config
	}{
		{"plain", ipc.Config{Capacity: 4096}},
		{"sequences-timestamps", ipc.Config{Capacity: 4096, Sequences: true, Timestamps: true}},
		{"header-commit-timestamps", ipc.Config{Capacity: 4096, HeaderCommit: true, Timestamps: true}},
		{"drop-oldest-sequences", ipc.Config{Capacity: 4096, DropOldest: true, Sequences: true}},
	} {
		cfg := tc.cfg
		t.Run(tc.name, func(t *testing.T) {
			r := create(t, cfg)
			msgs := []string{"a", "bb", "ccc"}
			produce(t, r, nil, msgs...)
			for _, view := range []*ipc.Ring{r, open(t, r.Path(), ipc.WithReadOnly())} {
				recs, err := ops.Peek(view, 10)
				require.NoError(t, err)
				require.Len(t, recs, len(msgs))
				now := time.Now()
				for i, rec := range recs {
					require.Equal(t, msgs[i], string(rec.Data))
					require.Zero(t, rec.Slot, "SPSC")
					if cfg.Sequences {
						require.NotZero(t, rec.Seq)
						if i > 0 {
							require.Greater(t, rec.Seq, recs[i-1].Seq)
						}
					} else {
						require.Zero(t, rec.Seq)
					}
					if cfg.Timestamps {
						// Unix ns: near now, not a monotonic reading since boot.
						at := time.Unix(0, rec.Time)
						require.WithinDuration(t, now, at, time.Hour, "commit time %v", at)
						if i > 0 {
							require.GreaterOrEqual(t, rec.Time, recs[i-1].Time)
						}
					} else {
						require.Zero(t, rec.Time)
					}
				}
				recs[0].Data[0] = 'X' // a copy: the ring keeps its bytes
				recs, err = ops.Peek(view, 2)
				require.NoError(t, err)
				require.Len(t, recs, 2)
				require.Equal(t, "a", string(recs[0].Data))
			}
			require.Equal(t, msgs, consume(t, r), "Peek consumed nothing")
			recs, err := ops.Peek(r, 10)
			require.NoError(t, err)
			require.Empty(t, recs)
		})
	}
}

// TestPeekMPSC: in an MPSC ring Peek names the slot that wrote each
// message and its position, and stops at an uncommitted reservation,
// returned last and marked, until it is committed.
func TestPeekMPSC(t *testing.T) {
	r := create(t, ipc.Config{Kind: ipc.MPSC, Capacity: 4096, Producers: 4, Sequences: true})
	produce(t, r, &ipc.ProducerConfig{ID: 1}, "from slot 0")
	produce(t, r, &ipc.ProducerConfig{ID: 3}, "from slot 2")
	recs, err := ops.Peek(r, 10)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "from slot 0", string(recs[0].Data))
	require.Equal(t, 0, recs[0].Slot)
	require.Equal(t, "from slot 2", string(recs[1].Data))
	require.Equal(t, 2, recs[1].Slot)
	require.Equal(t, uint64(1), recs[0].Seq, "each slot's first sequence")
	require.Equal(t, uint64(1), recs[1].Seq)
	require.Equal(t, uint64(0), recs[0].Start)
	require.Greater(t, recs[1].Start, recs[0].Start)
	require.Equal(t, recs[1].Start, recs[0].Record.Pos, "the embedded Record's Pos is where the record ends")
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, st.ProducerPos, recs[1].Pos)
	require.False(t, recs[0].Uncommitted || recs[1].Uncommitted)

	p, err := r.Producer(&ipc.ProducerConfig{ID: 2})
	require.NoError(t, err)
	defer p.Close()
	b, err := p.Claim(ctx(t), 5)
	require.NoError(t, err)
	copy(b, "claim")
	produce(t, r, &ipc.ProducerConfig{ID: 4}, "behind the claim")
	recs, err = ops.Peek(r, 10)
	require.NoError(t, err)
	require.Len(t, recs, 3, "the walk stops at the reservation")
	require.True(t, recs[2].Uncommitted, "the reservation ends the walk, marked")
	require.Equal(t, 1, recs[2].Slot)
	require.Empty(t, recs[2].Data)
	require.Greater(t, recs[2].Start, recs[1].Start)
	claimPos := recs[2].Start
	require.NoError(t, p.Commit(5))
	recs, err = ops.Peek(r, 10)
	require.NoError(t, err)
	require.Len(t, recs, 4)
	require.Equal(t, "claim", string(recs[2].Data))
	require.Equal(t, 1, recs[2].Slot)
	require.Equal(t, claimPos, recs[2].Start)
	require.False(t, recs[2].Uncommitted)
	require.Equal(t, "behind the claim", string(recs[3].Data))
	require.Equal(t, 3, recs[3].Slot)
}
