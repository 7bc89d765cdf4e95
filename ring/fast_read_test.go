package ring_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// TestFastReadFlag: the fast read path is taken exactly for a plain SPSC
// ring (no drop-oldest, sequences, timestamps or header commit), and not
// once the consumer holds its reads.
func TestFastReadFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ring.Config
		fast bool
	}{
		{"spsc", ring.Config{}, true},
		{"spsc overwrite", ring.Config{Overwrite: true}, false},
		{"spsc timestamps", ring.Config{Timestamps: true}, false},
		{"spsc sequences", ring.Config{Sequences: true}, false},
		{"spsc header commit", ring.Config{HeaderCommit: true}, false},
		{"spsc all", ring.Config{Timestamps: true, Sequences: true}, false},
		{"mpsc", ring.Config{Kind: ring.MPSC}, false},
		{"mpsc overwrite", ring.Config{Kind: ring.MPSC, Overwrite: true}, false},
		{"mpsc sequences", ring.Config{Kind: ring.MPSC, Sequences: true}, false},
		{"mpsc timestamps", ring.Config{Kind: ring.MPSC, Timestamps: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Capacity = 1 << 12
			size, err := ring.Size(cfg)
			require.NoError(t, err)
			region := make([]byte, size)
			require.NoError(t, ring.Format(region, cfg))
			r := attach(t, region)
			c, err := r.NewConsumer()
			require.NoError(t, err)
			require.Equal(t, tc.fast, ring.FastRead(c))
			require.Equal(t, tc.fast, c.Fast())
			if !cfg.Overwrite {
				require.NoError(t, c.Hold())
				require.False(t, ring.FastRead(c), "holding its reads")
				require.False(t, c.Fast(), "holding its reads")
			}
			if !c.Fast() {
				// The pull-style read refuses, changing nothing.
				pos := c.Position()
				_, next, ok := c.Next(pos)
				require.False(t, ok)
				require.Equal(t, pos, next)
				require.ErrorIs(t, c.EndBatch(pos+8, 1, 1, true), ring.ErrInvalid)
				require.Equal(t, pos, c.Position())
				require.NoError(t, c.Err())
			}
		})
	}
}

// fastReadPair is two plain rings written alike, one read through the fast
// path and one through the general path (ring.SlowReads).
type fastReadSide struct {
	r      *ring.Ring
	p      *ring.Producer
	c      *ring.Consumer
	region []byte
}

func fastReadPair(t *testing.T, capacity, maxMessage uint64) (fast, slow fastReadSide) {
	mk := func(fast bool) fastReadSide {
		cfg := ring.Config{Capacity: capacity, MaxMessage: maxMessage}
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
			ring.SlowReads(c)
		}
		require.Equal(t, fast, ring.FastRead(c))
		return fastReadSide{r, p, c, region}
	}
	return mk(true), mk(false)
}

// delivery is what a read callback was given: the payload and what Current
// said about it.
type delivery struct {
	msg []byte
	cur ring.Current
}

// pullRead is ReadBatch(max, fn) done with the pull-style read (Next,
// EndBatch), as package ipc's Batch does it: fn is given each record and
// its end; stopAt is the delivery after which it stops (-1: none).
func pullRead(c *ring.Consumer, max, stopAt int, fn func(msg []byte, end uint64)) (int, error) {
	if !c.Fast() {
		return 0, c.Err()
	}
	pos := c.Position()
	n := 0
	var bytes uint64
	for n < max {
		msg, next, ok := c.Next(pos)
		pos = next
		if !ok {
			break
		}
		fn(msg, next)
		n++
		bytes += uint64(len(msg))
		if n-1 == stopAt {
			break
		}
	}
	return n, c.EndBatch(pos, n, bytes, n == max)
}

// readFastOne is c.ReadBatch(max, fn), but for c on the fast path and max 1,
// c.TryRead(fn), the one-record fast path (read_one.go), which must do
// what ReadBatch(1, fn) does, store for store.
func readFastOne(c *ring.Consumer, max int, fn func([]byte)) (int, error) {
	if max != 1 || !ring.FastRead(c) {
		return c.ReadBatch(max, fn)
	}
	if ok, err := c.TryRead(fn); ok {
		return 1, err
	} else {
		return 0, err
	}
}

// TestFastReadSameDeliveries: a plain ring read through the fast path
// (TryRead's for reads of one, a third of them) and one read through the
// general path, written alike, deliver the same
// messages with the same Current, return the same counts, and leave the
// same bytes in their regions (positions, counters, high watermark,
// pressure) after every operation: reads of random sizes, callbacks that
// Stop at random, single writes and batches of random sizes (empty
// messages and the maximum included), wrapping many times, the ring
// filling up, pressure levels and the high watermark changed on the way.
// Same Stats at the end.
func TestFastReadSameDeliveries(t *testing.T) {
	const maxMsg = 300
	a, b := fastReadPair(t, 1<<12, maxMsg)
	c, _ := fastReadPair(t, 1<<12, maxMsg) // read with Next and EndBatch
	rng := rand.New(rand.NewPCG(3, 4))
	var seq uint64
	msg := func() []byte {
		seq++
		n := rng.IntN(maxMsg + 1)
		if rng.IntN(20) == 0 {
			n = []int{0, 1, 7, 8, maxMsg}[rng.IntN(5)]
		}
		return fill(make([]byte, n), seq)
	}
	var gotA, gotB, gotC []delivery
	reads := 0
	for step := range 30000 {
		switch k := rng.IntN(12); {
		case k < 4:
			m := msg()
			errA, errB, errC := a.p.TryWrite(m), b.p.TryWrite(m), c.p.TryWrite(m)
			require.Equal(t, errB, errA, "step %d", step)
			require.Equal(t, errB, errC, "step %d", step)
		case k < 6:
			ms := make([][]byte, rng.IntN(20))
			for i := range ms {
				ms[i] = msg()
			}
			na, errA := a.p.WriteBatch(ms)
			nb, errB := b.p.WriteBatch(ms)
			nc, errC := c.p.WriteBatch(ms)
			require.Equal(t, nb, na, "step %d", step)
			require.Equal(t, errB, errA, "step %d", step)
			require.Equal(t, nb, nc, "step %d", step)
			require.Equal(t, errB, errC, "step %d", step)
		case k < 10:
			max := rng.IntN(10) // 0 included
			if rng.IntN(3) == 0 {
				max = 1 // a (the fast path) reads it with TryRead (read_one.go)
			}
			stopAt := -1 // the delivery (of this read) whose callback calls Stop
			if rng.IntN(4) == 0 {
				stopAt = rng.IntN(max + 1)
			}
			read := func(s fastReadSide, got *[]delivery) (int, error) {
				k := 0
				return readFastOne(s.c, max, func(m []byte) {
					*got = append(*got, delivery{bytes.Clone(m), s.c.Current()})
					if k == stopAt {
						s.c.Stop()
					}
					k++
				})
			}
			na, errA := read(a, &gotA)
			nb, errB := read(b, &gotB)
			nc, errC := pullRead(c.c, max, stopAt, func(m []byte, end uint64) {
				gotC = append(gotC, delivery{bytes.Clone(m), ring.Current{End: end}})
			})
			require.NoError(t, errA, "step %d", step)
			require.NoError(t, errB, "step %d", step)
			require.NoError(t, errC, "step %d", step)
			require.Equal(t, nb, na, "step %d", step)
			require.Equal(t, nb, nc, "step %d", step)
			require.Equal(t, b.c.Position(), a.c.Position(), "step %d", step)
			require.Equal(t, b.c.Position(), c.c.Position(), "step %d", step)
			reads += na
		default:
			switch rng.IntN(4) {
			case 0:
				high := uint64(rng.IntN(1 << 12))
				require.NoError(t, a.r.SetPressureLevels(high, high/2))
				require.NoError(t, b.r.SetPressureLevels(high, high/2))
				require.NoError(t, c.r.SetPressureLevels(high, high/2))
			case 1:
				require.NoError(t, a.r.SetPressureLevels(0, 0))
				require.NoError(t, b.r.SetPressureLevels(0, 0))
				require.NoError(t, c.r.SetPressureLevels(0, 0))
			case 2:
				a.r.ResetHighWater()
				b.r.ResetHighWater()
				c.r.ResetHighWater()
			default:
				pa, errA := a.c.Pending()
				pb, errB := b.c.Pending()
				pc, errC := c.c.Pending()
				require.Equal(t, pb, pa, "step %d", step)
				require.Equal(t, errB, errA, "step %d", step)
				require.Equal(t, pb, pc, "step %d", step)
				require.Equal(t, errB, errC, "step %d", step)
			}
		}
		require.True(t, bytes.Equal(a.region, b.region), "step %d: the regions differ", step)
		require.True(t, bytes.Equal(c.region, b.region), "step %d: the pull-style reader's region differs", step)
	}
	require.Equal(t, gotB, gotA)
	require.Equal(t, gotB, gotC)
	require.Greater(t, reads, 10000)
	sa, sb := a.r.Stats(), b.r.Stats()
	require.Equal(t, sb, sa)
	require.NotZero(t, sa.PressureChanges, "pressure rose and fell on the way")
	var nb uint64
	for _, d := range gotA {
		nb += uint64(len(d.msg))
	}
	require.Equal(t, uint64(len(gotA)), sa.MsgsOut)
	require.Equal(t, nb, sa.BytesOut)
}

// TestFastReadSameDamage: damage the fast path (TryRead's for reads of
// one) finds (a header or the
// producer position changed at random, as a hostile or broken producer
// could) is what the general path finds: the same messages delivered
// before it, the same count, the same error (ErrCorrupt, the same text),
// the same region after, and the consumer stays failed. Nothing panics or
// reads out of bounds (the race detector and the slices' bounds would
// tell).
func TestFastReadSameDamage(t *testing.T) {
	const maxMsg = 200
	rng := rand.New(rand.NewPCG(5, 6))
	corrupt := 0
	for round := range 3000 {
		a, b := fastReadPair(t, 1<<11, maxMsg)
		c, _ := fastReadPair(t, 1<<11, maxMsg) // read with Next and EndBatch
		// Move both rings to a random position, so that damage may fall
		// near the wrap.
		skip := rng.IntN(40)
		for range skip {
			m := make([]byte, rng.IntN(maxMsg+1))
			require.NoError(t, a.p.TryWrite(m))
			require.NoError(t, b.p.TryWrite(m))
			require.NoError(t, c.p.TryWrite(m))
			_, err := a.c.ReadBatch(1, func([]byte) {})
			require.NoError(t, err)
			_, err = b.c.ReadBatch(1, func([]byte) {})
			require.NoError(t, err)
			_, err = pullRead(c.c, 1, -1, func([]byte, uint64) {})
			require.NoError(t, err)
		}
		for range 1 + rng.IntN(8) {
			m := fill(make([]byte, rng.IntN(maxMsg+1)), uint64(round))
			errA, errB, errC := a.p.TryWrite(m), b.p.TryWrite(m), c.p.TryWrite(m)
			require.Equal(t, errB, errA)
			require.Equal(t, errB, errC)
		}
		// The damage: a word at a random 8-aligned index of the data
		// area (most are headers or payload) or the producer position,
		// given a random value, a random bit flipped, or a plausible
		// header (a type and length near the limits).
		dataOff := a.r.DataOffset()
		off := dataOff + uint64(rng.IntN(1<<11/8))*8
		recs, err := a.r.Peek(100)
		require.NoError(t, err)
		switch rng.IntN(6) {
		case 0:
			off = ring.OffProducerPos
		case 1, 2, 3:
			// A header of a record not yet read.
			off = dataOff + recs[rng.IntN(len(recs))].Pos&(1<<11-1)
		}
		old := binary.LittleEndian.Uint64(a.region[off:])
		var v uint64
		switch rng.IntN(4) {
		case 0:
			v = rng.Uint64()
		case 1:
			v = old ^ 1<<rng.IntN(64)
		case 2:
			v = uint64(1+rng.IntN(3))<<48 | uint64(rng.IntN(2*(1<<11)))
		default:
			v = uint64(rng.IntN(4))<<48 | uint64(rng.IntN(4))<<56 | uint64(maxMsg-8+rng.IntN(16))
		}
		binary.LittleEndian.PutUint64(a.region[off:], v)
		binary.LittleEndian.PutUint64(b.region[off:], v)
		binary.LittleEndian.PutUint64(c.region[off:], v)
		var gotA, gotB, gotC []delivery
		for range 3 {
			max := 1 + rng.IntN(10)
			if rng.IntN(3) == 0 {
				max = 1
			}
			na, errA := readFastOne(a.c, max, func(m []byte) { gotA = append(gotA, delivery{bytes.Clone(m), a.c.Current()}) })
			nb, errB := b.c.ReadBatch(max, func(m []byte) { gotB = append(gotB, delivery{bytes.Clone(m), b.c.Current()}) })
			nc, errC := pullRead(c.c, max, -1, func(m []byte, end uint64) {
				gotC = append(gotC, delivery{bytes.Clone(m), ring.Current{End: end}})
			})
			require.Equal(t, nb, na, "round %d", round)
			require.Equal(t, nb, nc, "round %d", round)
			if errB != nil {
				corrupt++
				require.ErrorIs(t, errA, ring.ErrCorrupt, "round %d", round)
				require.EqualError(t, errA, errB.Error(), "round %d", round)
				require.EqualError(t, errC, errB.Error(), "round %d", round)
				require.Equal(t, errA, a.c.Err(), "the fast consumer stays failed")
				require.False(t, c.c.Fast(), "a damaged consumer is not Fast")
			} else {
				require.NoError(t, errA, "round %d", round)
				require.NoError(t, errC, "round %d", round)
			}
			require.True(t, bytes.Equal(a.region, b.region), "round %d: the regions differ", round)
			require.True(t, bytes.Equal(c.region, b.region), "round %d: the pull-style reader's region differs", round)
		}
		require.Equal(t, gotB, gotA, "round %d", round)
		require.Equal(t, gotB, gotC, "round %d", round)
	}
	require.Greater(t, corrupt, 500, "damage was found in many rounds")
}
