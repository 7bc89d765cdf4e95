package ring_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestFastFlag: the fast write path is taken exactly for a plain SPSC ring
// (no sequences, timestamps or header commit; overwrite allowed), and not
// while a claim is outstanding or a test hook is set.
func TestFastFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ring.Config
		fast bool
	}{
		{"spsc", ring.Config{}, true},
		{"spsc overwrite", ring.Config{Overwrite: true}, true},
		{"spsc timestamps", ring.Config{Timestamps: true}, false},
		{"spsc sequences", ring.Config{Sequences: true}, false},
		{"spsc header commit", ring.Config{HeaderCommit: true}, false},
		{"spsc all", ring.Config{Timestamps: true, Sequences: true}, false},
		{"mpsc", ring.Config{Kind: ring.MPSC}, false},
		{"mpsc overwrite", ring.Config{Kind: ring.MPSC, Overwrite: true}, false},
		{"mpsc sequences", ring.Config{Kind: ring.MPSC, Sequences: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { checkFastFlag(t, tc.cfg, tc.fast, ring.Fast) })
	}
}

// checkFastFlag checks a producer's fast-path flag (flag: ring.Fast or
// ring.FastShared) on a fresh ring of cfg: as expected (fast), off while a
// claim is outstanding or a hook is set, back after Commit, Abort and the
// hook's removal.
func checkFastFlag(t *testing.T, cfg ring.Config, fast bool, flag func(*ring.Producer) bool) {
	cfg.Capacity = 1 << 12
	size, err := ring.Size(cfg)
	require.NoError(t, err)
	region := make([]byte, size)
	require.NoError(t, ring.Format(region, cfg))
	r := attach(t, region)
	var p *ring.Producer
	if cfg.Kind == ring.MPSC {
		p, err = r.NewSlotProducer(0)
	} else {
		p, err = r.NewProducer()
	}
	require.NoError(t, err)
	require.Equal(t, fast, flag(p))

	_, err = p.Claim(10)
	require.NoError(t, err)
	require.False(t, flag(p), "a claim is outstanding")
	require.NoError(t, p.Commit())
	require.Equal(t, fast, flag(p), "after Commit")
	_, err = p.Claim(10)
	require.NoError(t, err)
	p.Abort()
	require.Equal(t, fast, flag(p), "after Abort")

	ring.SetHook(p, func(int) {})
	require.False(t, flag(p), "a hook is set")
	ring.SetHook(p, nil)
	require.Equal(t, fast, flag(p), "the hook removed")
}

// TestFastPathSameBytes: a plain ring written through the fast path and
// one written through the general path (a no-op hook turns the fast path
// off) hold the same bytes, region and counters alike, after every
// operation: single writes and batches of random sizes, wrapping many
// times, reads interleaved, the ring filling up, a window and pressure
// levels set and changed on the way. Whatever the path, readers (and the C
// reader) see the same ring.
func TestFastPathSameBytes(t *testing.T) {
	type side struct {
		r      *ring.Ring
		p      *ring.Producer
		c      *ring.Consumer
		region []byte
	}
	mk := func(fast bool) side {
		cfg := ring.Config{Capacity: 1 << 12, MaxMessage: 300}
		size, err := ring.Size(cfg)
		require.NoError(t, err)
		region := make([]byte, size)
		require.NoError(t, ring.Format(region, cfg))
		r := attach(t, region)
		p, err := r.NewProducer()
		require.NoError(t, err)
		c, err := r.NewConsumer()
		require.NoError(t, err)
		if !fast {
			ring.SetHook(p, func(int) {})
		}
		require.Equal(t, fast, ring.Fast(p))
		return side{r, p, c, region}
	}
	a, b := mk(true), mk(false)
	rng := rand.New(rand.NewPCG(1, 2))
	var seq uint64
	msg := func() []byte {
		seq++
		return fill(make([]byte, rng.IntN(301)), seq)
	}
	var readA, readB [][]byte
	for step := range 20000 {
		switch k := rng.IntN(10); {
		case k < 4:
			m := msg()
			require.Equal(t, b.p.TryWrite(m), a.p.TryWrite(m), "step %d", step)
		case k < 6:
			ms := make([][]byte, rng.IntN(20))
			for i := range ms {
				ms[i] = msg()
			}
			if rng.IntN(50) == 0 && len(ms) > 0 {
				ms[rng.IntN(len(ms))] = make([]byte, 301) // too large
			}
			na, errA := a.p.WriteBatch(ms)
			nb, errB := b.p.WriteBatch(ms)
			require.Equal(t, nb, na, "step %d", step)
			require.Equal(t, errB, errA, "step %d", step)
		case k < 9:
			max := 1 + rng.IntN(8)
			_, err := a.c.ReadBatch(max, func(m []byte) { readA = append(readA, bytes.Clone(m)) })
			require.NoError(t, err)
			_, err = b.c.ReadBatch(max, func(m []byte) { readB = append(readB, bytes.Clone(m)) })
			require.NoError(t, err)
		default:
			switch rng.IntN(4) {
			case 0:
				w := uint64(rng.IntN(1 << 12))
				a.r.SetWindow(w)
				b.r.SetWindow(w)
			case 1:
				a.r.SetWindow(0)
				b.r.SetWindow(0)
			case 2:
				high := uint64(rng.IntN(1 << 12))
				low := high / 2
				require.NoError(t, a.r.SetPressureLevels(high, low))
				require.NoError(t, b.r.SetPressureLevels(high, low))
			default:
				require.NoError(t, a.r.SetPressureLevels(0, 0))
				require.NoError(t, b.r.SetPressureLevels(0, 0))
			}
		}
		require.True(t, bytes.Equal(a.region, b.region), "step %d: the regions differ", step)
	}
	require.Equal(t, readB, readA)
	require.NotEmpty(t, readA)
	sa, sb := a.r.Stats(), b.r.Stats()
	require.Equal(t, sb, sa)
	var nb uint64
	for _, m := range readA {
		nb += uint64(len(m))
	}
	require.Equal(t, uint64(len(readA)), sa.MsgsOut)
	require.Equal(t, nb, sa.BytesOut)
	require.Greater(t, sa.MsgsIn, sa.MsgsOut, "some left unread")
}
