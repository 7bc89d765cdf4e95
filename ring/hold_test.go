package ring_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// holdRings are the ring layouts a consumer may hold its reads in.
var holdRings = []struct {
	name string
	cfg  ring.Config
}{
	{"spsc", ring.Config{Capacity: 1024, MaxMessage: 128}},
	{"spsc sequences", ring.Config{Capacity: 1024, MaxMessage: 128, Sequences: true}},
	{"spsc header commit", ring.Config{Capacity: 1024, MaxMessage: 128, HeaderCommit: true}},
	{"spsc header commit sequences timestamps", ring.Config{Capacity: 1024, MaxMessage: 128, HeaderCommit: true, Sequences: true, Timestamps: true}},
	{"mpsc", ring.Config{Kind: ring.MPSC, Slots: 2, Capacity: 1024, MaxMessage: 128}},
	{"mpsc sequences", ring.Config{Kind: ring.MPSC, Slots: 2, Capacity: 1024, MaxMessage: 128, Sequences: true}},
}

// holdMsg is message id of n bytes (n >= 8): the id, then filler.
func holdMsg(id uint64, n int) []byte {
	m := make([]byte, n)
	binary.LittleEndian.PutUint64(m, id)
	for i := 8; i < n; i++ {
		m[i] = byte(id) + byte(i)
	}
	return m
}

func holdID(t *testing.T, m []byte) uint64 {
	t.Helper()
	require.GreaterOrEqual(t, len(m), 8)
	id := binary.LittleEndian.Uint64(m)
	require.Equal(t, holdMsg(id, len(m)), m, "payload of message %d", id)
	return id
}

// TestHoldModel runs random writes, held reads, releases (valid and not)
// and consumer restarts against a reference: the messages written, in
// ring order, of which a prefix is released and the next ones are held.
// Every read delivers exactly the next message the reference expects
// (in order, no gap; after a restart, again from the first not released),
// duplicates resent by a producer are never delivered, a bad Release
// changes nothing, and the region's consumer position is always the
// released one (a successor resumes there).
func TestHoldModel(t *testing.T) {
	for _, tc := range holdRings {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(8) {
				holdModel(t, tc.cfg, seed)
			}
		})
	}
}

func holdModel(t *testing.T, cfg ring.Config, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 15))
	_, r := formatRing(t, cfg)
	var ps []*ring.Producer
	if cfg.Kind == ring.MPSC {
		ps = []*ring.Producer{slotProducer(t, r, 0), slotProducer(t, r, 1)}
	} else {
		p, err := r.NewProducer()
		require.NoError(t, err)
		ps = []*ring.Producer{p}
	}
	newConsumer := func() *ring.Consumer {
		c, err := r.NewConsumer()
		require.NoError(t, err)
		require.NoError(t, c.Hold())
		require.True(t, c.Holding())
		return c
	}
	c := newConsumer()

	type held struct{ id, end uint64 }
	var (
		expected []uint64 // ids in ring order, duplicates left out
		released int      // expected[:released] are released
		holding  []held   // expected[released:released+len(holding)], read and held
		nextID   uint64
		lastSeq  = map[int][2]uint64{} // producer index: its last message's seq and id (sequences)
		written  int
	)
	write := func() {
		k := rng.IntN(len(ps))
		p := ps[k]
		if cfg.Sequences && rng.IntN(6) == 0 && lastSeq[k][0] != 0 {
			// Resend the producer's last message with its sequence: the
			// consumer must discard it, held or not.
			last := lastSeq[k]
			err := p.TryWriteSeq(last[0], holdMsg(last[1], 8+int(last[1]%64)))
			if err != nil {
				require.ErrorIs(t, err, ring.ErrFull)
			}
			return
		}
		id := nextID
		seq := p.NextSeq()
		err := p.TryWrite(holdMsg(id, 8+int(id%64)))
		if errors.Is(err, ring.ErrFull) {
			return
		}
		require.NoError(t, err)
		nextID++
		written++
		expected = append(expected, id)
		lastSeq[k] = [2]uint64{seq, id}
	}
	read := func() {
		max := 1 + rng.IntN(6)
		n, err := c.ReadBatch(max, func(m []byte) {
			id := holdID(t, m)
			at := released + len(holding)
			require.Less(t, at, len(expected), "delivered message %d, beyond what was written", id)
			require.Equal(t, expected[at], id, "the next message in order, no gap")
			cur := c.Current()
			require.Greater(t, cur.End, c.Cursor())
			holding = append(holding, held{id, cur.End})
		})
		require.NoError(t, err)
		require.LessOrEqual(t, n, max)
		require.Equal(t, r.Stats().ConsumerPos, c.Position(), "reads release nothing delivered")
	}
	release := func() {
		rel := c.Position()
		// Bad positions first: each returns ErrInvalid and changes nothing.
		bad := []uint64{c.Cursor() + 8, rel - 8}
		if len(holding) > 0 {
			bad = append(bad, holding[0].end-8) // inside the first held record
		}
		for _, pos := range bad {
			require.ErrorIs(t, c.Release(pos), ring.ErrInvalid, "Release(%d), held [%d, %d]", pos, rel, c.Cursor())
			require.Equal(t, rel, c.Position())
			require.Equal(t, rel, r.Stats().ConsumerPos)
		}
		j := rng.IntN(len(holding) + 1)
		pos := rel
		if j > 0 {
			pos = holding[j-1].end
		}
		require.NoError(t, c.Release(pos))
		released += j
		holding = holding[j:]
		got := c.Position()
		require.GreaterOrEqual(t, got-rel, pos-rel, "released at least to pos")
		if len(holding) > 0 {
			require.Less(t, got-rel, holding[0].end-rel, "no message still held is released")
		}
		require.Equal(t, got, r.Stats().ConsumerPos, "the region holds the released position")
	}
	restart := func() {
		c = newConsumer()
		holding = nil // delivered again, from the released position
	}
	for range 400 {
		switch x := rng.IntN(10); {
		case x < 4:
			write()
		case x < 7:
			read()
		case x < 9:
			release()
		default:
			restart()
		}
	}
	// Drain: everything written is delivered, then released.
	for range 1000 {
		read()
		if len(holding) > 0 {
			require.NoError(t, c.Release(holding[len(holding)-1].end))
			released += len(holding)
			holding = nil
		}
		if released == len(expected) {
			break
		}
	}
	require.Equal(t, len(expected), released, "seed %d: every message delivered and released", seed)
	st := r.Stats()
	require.Equal(t, st.ProducerPos, st.ConsumerPos, "seed %d: releasing all that was delivered released all that was read", seed)
	require.Greater(t, written, 20, "seed %d: the model wrote too little to mean anything", seed)
}

// A held consumer never reads past a capacity from its released position,
// and producers find the ring full of held records: nothing is written
// over them until Release, which makes room.
func TestHoldFillsTheRing(t *testing.T) {
	for _, tc := range holdRings {
		t.Run(tc.name, func(t *testing.T) {
			_, r := formatRing(t, tc.cfg)
			var p *ring.Producer
			var err error
			if tc.cfg.Kind == ring.MPSC {
				p = slotProducer(t, r, 0)
			} else {
				p, err = r.NewProducer()
				require.NoError(t, err)
			}
			c, err := r.NewConsumer()
			require.NoError(t, err)
			require.NoError(t, c.Hold())
			id, next := uint64(0), uint64(0)
			fill := func() {
				for p.TryWrite(holdMsg(id, 40)) == nil {
					id++
				}
			}
			for round := range 4 {
				fill()
				var ends []uint64
				first := next
				n, err := c.ReadBatch(1000, func(m []byte) {
					require.Equal(t, next, holdID(t, m))
					next++
					ends = append(ends, c.Current().End)
				})
				require.NoError(t, err)
				require.Positive(t, n, "round %d", round)
				require.LessOrEqual(t, c.Cursor()-c.Position(), tc.cfg.Capacity, "the read-ahead stays within a capacity")
				// Skipped padding may have been released (nothing
				// delivered before it was held): fill what it freed.
				fill()
				require.GreaterOrEqual(t, r.Stats().Depth, ends[len(ends)-1]-ends[0], "the depth counts held bytes")
				// The held records are intact, in the ring from the
				// released position, followed by what was written since.
				recs, err := r.Peek(1000)
				require.NoError(t, err)
				want := first
				for _, rec := range recs {
					if rec.Type == ring.TypeData {
						require.Equal(t, want, holdID(t, rec.Payload), "round %d", round)
						want++
					}
				}
				require.Equal(t, id, want, "round %d: everything written is there", round)
				// Release half: room for more.
				depth := r.Stats().Depth
				require.NoError(t, c.Release(ends[len(ends)/2]))
				require.Less(t, r.Stats().Depth, depth)
				require.NoError(t, p.TryWrite(holdMsg(id, 40)), "round %d: Release made room", round)
				id++
				require.NoError(t, c.Release(ends[len(ends)-1]))
			}
			require.Equal(t, next, r.Stats().MsgsOut)
		})
	}
}

// Hold is refused on overwrite rings; Release without Hold is refused.
func TestHoldRefusals(t *testing.T) {
	_, r := formatRing(t, ring.Config{Capacity: 1024, Overwrite: true})
	c, err := r.NewConsumer()
	require.NoError(t, err)
	require.ErrorIs(t, c.Hold(), ring.ErrInvalid)
	require.False(t, c.Holding())

	_, r = formatRing(t, ring.Config{Capacity: 1024})
	c, err = r.NewConsumer()
	require.NoError(t, err)
	require.ErrorIs(t, c.Release(0), ring.ErrInvalid)
	require.Equal(t, c.Position(), c.Cursor())
}

// In an MPSC ring a Release zeroes the released range, as every release
// does (producers rely on free space reading zero), and nothing else.
func TestHoldReleaseZeroesMPSC(t *testing.T) {
	region, r := formatRing(t, ring.Config{Kind: ring.MPSC, Slots: 2, Capacity: 1024, MaxMessage: 128})
	p := slotProducer(t, r, 0)
	c, err := r.NewConsumer()
	require.NoError(t, err)
	require.NoError(t, c.Hold())
	for i := range 4 {
		require.NoError(t, p.TryWrite(holdMsg(uint64(i), 24)))
	}
	var ends []uint64
	_, err = c.ReadBatch(10, func([]byte) { ends = append(ends, c.Current().End) })
	require.NoError(t, err)
	require.Len(t, ends, 4)
	data := region[r.DataOffset() : r.DataOffset()+r.Capacity()]
	require.NoError(t, c.Release(ends[1]))
	require.Equal(t, make([]byte, ends[1]), data[:ends[1]], "the released range is zeroed")
	require.NotEqual(t, make([]byte, ends[3]-ends[1]), data[ends[1]:ends[3]], "the held records are intact")
	require.NoError(t, c.Release(ends[3]))
	require.Equal(t, make([]byte, ends[3]), data[:ends[3]])
}

// A held consumer killed in its Release, at each step: its successor
// resumes at the released position in the region and delivers again
// exactly what was not released; in a ring with sequences, records whose
// sequences were stored before the death are released work the successor
// discards (counted as duplicates), never delivers twice.
func TestHoldReleaseDies(t *testing.T) {
	for _, tc := range holdRings {
		for _, step := range []int{ring.StepHeldStored, ring.StepHeldReleased} {
			t.Run(fmt.Sprintf("%s/step %d", tc.name, step), func(t *testing.T) {
				_, r := formatRing(t, tc.cfg)
				var ps []*ring.Producer
				if tc.cfg.Kind == ring.MPSC {
					ps = []*ring.Producer{slotProducer(t, r, 0), slotProducer(t, r, 1)}
				} else {
					p, err := r.NewProducer()
					require.NoError(t, err)
					ps = []*ring.Producer{p}
				}
				for i := range 6 {
					require.NoError(t, ps[i%len(ps)].TryWrite(holdMsg(uint64(i), 24)))
				}
				c, err := r.NewConsumer()
				require.NoError(t, err)
				require.NoError(t, c.Hold())
				var ends []uint64
				_, err = c.ReadBatch(10, func(m []byte) {
					require.Equal(t, uint64(len(ends)), holdID(t, m))
					ends = append(ends, c.Current().End)
				})
				require.NoError(t, err)
				require.Len(t, ends, 6)
				ring.ReleaseHeldDying(t, c, ends[2], step)

				want := uint64(0) // nothing released: the position was not stored
				if step == ring.StepHeldReleased || tc.cfg.Sequences {
					want = 3 // released, or discarded by the stored sequences
				}
				c2, err := r.NewConsumer()
				require.NoError(t, err)
				require.NoError(t, c2.Hold())
				var got []uint64
				_, err = c2.ReadBatch(10, func(m []byte) {
					got = append(got, holdID(t, m))
					ends[len(got)-1+int(want)] = c2.Current().End
				})
				require.NoError(t, err)
				var expect []uint64
				for id := want; id < 6; id++ {
					expect = append(expect, id)
				}
				require.Equal(t, expect, got, "the successor delivers what was not released, once, in order")
				require.NoError(t, c2.Release(ends[5]))
				st := r.Stats()
				require.Zero(t, st.Depth)
				dups := uint64(0)
				if step == ring.StepHeldStored && tc.cfg.Sequences {
					dups = 3
				}
				require.Equal(t, dups, st.Duplicates)
			})
		}
	}
}

// A held MPSC consumer killed while zeroing what it released (its zeroing
// mark published, the position not stored) is finished by its successor,
// as an unheld one's is: the successor resumes after the released records
// and delivers again only what was held and not released.
func TestHoldMPSCDiesWhileZeroing(t *testing.T) {
	r, c := newMPSC(t, 1<<12, 128, 1)
	p := slotProducer(t, r, 0)
	for i := range 6 {
		require.NoError(t, p.TryWrite(holdMsg(uint64(i), 24)))
	}
	require.NoError(t, c.Hold())
	var ends []uint64
	_, err := c.ReadBatch(10, func([]byte) { ends = append(ends, c.Current().End) })
	require.NoError(t, err)
	require.Len(t, ends, 6)
	require.NoError(t, c.Release(ends[2]))
	// Simulate: the mark says the release ends at ends[2], the consumer
	// position was never stored (and only part of the range was zeroed).
	region := ring.RegionOf(r)
	ring.SetConsumerPos(region, 0)
	c2, err := r.NewConsumer()
	require.NoError(t, err)
	require.NoError(t, c2.Hold())
	require.Equal(t, ends[2], c2.Position(), "the successor finished the release")
	var got []uint64
	_, err = c2.ReadBatch(10, func(m []byte) { got = append(got, holdID(t, m)) })
	require.NoError(t, err)
	require.Equal(t, []uint64{3, 4, 5}, got)
	require.Zero(t, r.Stats().Lost)
}
