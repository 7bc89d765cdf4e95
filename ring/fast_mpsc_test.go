package ring_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestFastSharedFlag: the MPSC fast write path is taken exactly for a plain
// MPSC ring (no sequences or timestamps; drop-oldest allowed), and not
// while a claim is outstanding or a test hook is set; never by an SPSC
// producer.
func TestFastSharedFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ring.Config
		fast bool
	}{
		{"mpsc", ring.Config{Kind: ring.MPSC}, true},
		{"mpsc overwrite", ring.Config{Kind: ring.MPSC, Overwrite: true}, true},
		{"mpsc sequences", ring.Config{Kind: ring.MPSC, Sequences: true}, false},
		{"mpsc timestamps", ring.Config{Kind: ring.MPSC, Timestamps: true}, false},
		{"spsc", ring.Config{}, false},
		{"spsc sequences", ring.Config{Sequences: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { checkFastFlag(t, tc.cfg, tc.fast, ring.FastShared) })
	}
}

// TestFastSharedSameBytes: a plain MPSC ring written through the fast path
// and one written through the general path (a no-op hook on each producer
// turns the fast path off) hold the same bytes, region, slots and counters
// alike, after every operation: three producer slots taking turns, single
// writes and batches of random sizes (a batch writes a record that must
// wrap through TryWrite), claims committed, shortened and aborted (a
// write meanwhile is refused), too-large messages, the ring wrapping many
// times and filling up (drop-oldest: reclaiming), reads interleaved, a
// window and pressure levels set and changed on the way. Whatever the
// path, readers (the C reader and the recovery code included) see the
// same ring: the same intents, headers, counters and positions.
func TestFastSharedSameBytes(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		name := "plain"
		if overwrite {
			name = "overwrite"
		}
		t.Run(name, func(t *testing.T) { fastSharedSameBytes(t, overwrite) })
	}
}

func fastSharedSameBytes(t *testing.T, overwrite bool) {
	const slots = 3
	type side struct {
		r      *ring.Ring
		p      [slots]*ring.Producer
		c      *ring.Consumer
		region []byte
	}
	mk := func(fast bool) side {
		cfg := ring.Config{Kind: ring.MPSC, Capacity: 1 << 12, MaxMessage: 300, Slots: slots, Overwrite: overwrite}
		size, err := ring.Size(cfg)
		require.NoError(t, err)
		region := make([]byte, size)
		require.NoError(t, ring.Format(region, cfg))
		s := side{r: attach(t, region), region: region}
		for i := range s.p {
			s.p[i], err = s.r.NewSlotProducer(i)
			require.NoError(t, err)
			if !fast {
				ring.SetHook(s.p[i], func(int) {})
			}
			require.Equal(t, fast, ring.FastShared(s.p[i]))
		}
		s.c, err = s.r.NewConsumer()
		require.NoError(t, err)
		return s
	}
	a, b := mk(true), mk(false)
	rng := rand.New(rand.NewPCG(3, 4))
	var seq uint64
	msg := func() []byte {
		seq++
		if rng.IntN(100) == 0 {
			return make([]byte, 301) // too large
		}
		return fill(make([]byte, rng.IntN(301)), seq)
	}
	var readA, readB [][]byte
	var fullA, fullB int
	for step := range 20000 {
		k := rng.IntN(slots)
		pa, pb := a.p[k], b.p[k]
		switch op := rng.IntN(12); {
		case op < 5:
			m := msg()
			errA, errB := pa.TryWrite(m), pb.TryWrite(m)
			require.Equal(t, errB, errA, "step %d", step)
			if errA == ring.ErrFull {
				fullA++
				if overwrite {
					na, errA := pa.TryWriteOverwrite(m)
					nb, errB := pb.TryWriteOverwrite(m)
					require.Equal(t, nb, na, "step %d", step)
					require.Equal(t, errB, errA, "step %d", step)
				}
			}
		case op < 7:
			ms := make([][]byte, rng.IntN(20))
			for i := range ms {
				ms[i] = msg()
			}
			na, errA := pa.WriteBatch(ms)
			nb, errB := pb.WriteBatch(ms)
			require.Equal(t, nb, na, "step %d", step)
			require.Equal(t, errB, errA, "step %d", step)
			if errA == ring.ErrFull {
				fullB++
			}
		case op < 8:
			if pa.Claimed() >= 0 {
				switch rng.IntN(3) {
				case 0:
					require.Equal(t, pb.Commit(), pa.Commit(), "step %d", step)
				case 1:
					n := rng.IntN(pa.Claimed() + 1)
					require.Equal(t, pb.CommitN(n), pa.CommitN(n), "step %d", step)
				default:
					pa.Abort()
					pb.Abort()
				}
				require.Equal(t, -1, pa.Claimed())
				break
			}
			n := rng.IntN(301)
			bufA, errA := pa.Claim(n)
			bufB, errB := pb.Claim(n)
			require.Equal(t, errB, errA, "step %d", step)
			if errA == nil {
				seq++
				fill(bufA, seq)
				fill(bufB, seq)
			}
		case op < 11:
			max := 1 + rng.IntN(8)
			na, errA := a.c.ReadBatch(max, func(m []byte) { readA = append(readA, bytes.Clone(m)) })
			nb, errB := b.c.ReadBatch(max, func(m []byte) { readB = append(readB, bytes.Clone(m)) })
			require.Equal(t, nb, na, "step %d", step)
			require.Equal(t, errB, errA, "step %d", step)
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
	require.NotZero(t, fullA, "the ring never filled for a single write")
	require.NotZero(t, fullB, "the ring never filled for a batch")
	sa, sb := a.r.Stats(), b.r.Stats()
	require.Equal(t, sb, sa)
	require.Greater(t, sa.MsgsIn, sa.MsgsOut, "some left unread")
}
