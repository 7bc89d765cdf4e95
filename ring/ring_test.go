package ring_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

func newRing(t testing.TB, capacity, maxMsg uint64, opts ...func(*ring.Config)) (*ring.Producer, *ring.Consumer, []byte) {
	t.Helper()
	return newRingAt(t, capacity, maxMsg, 0, opts...)
}

func newRingAt(t testing.TB, capacity, maxMsg, start uint64, opts ...func(*ring.Config)) (*ring.Producer, *ring.Consumer, []byte) {
	t.Helper()
	cfg := ring.Config{Capacity: capacity, MaxMessage: maxMsg}
	for _, o := range opts {
		o(&cfg)
	}
	size, err := ring.Size(cfg)
	require.NoError(t, err)
	region := make([]byte, size)
	require.NoError(t, ring.FormatAt(region, cfg, start))
	r := attach(t, region)
	p, err := r.NewProducer()
	require.NoError(t, err)
	c, err := r.NewConsumer()
	require.NoError(t, err)
	return p, c, region
}

// headerCommit configures an SPSC ring whose consumer polls headers.
func headerCommit(c *ring.Config) { c.HeaderCommit = true }

// spscModes runs f on an SPSC ring found by the producer position and on
// one found by headers (FlagHeaderCommit): the same tests hold for both.
func spscModes(t *testing.T, f func(t *testing.T, opts ...func(*ring.Config))) {
	t.Run("position-commit", func(t *testing.T) { f(t) })
	t.Run("header-commit", func(t *testing.T) { f(t, headerCommit) })
}

// fill returns a payload of n bytes derived from seq, so a reader can check it.
func fill(buf []byte, seq uint64) []byte {
	x := seq*0x9E3779B97F4A7C15 + 1
	for i := range buf {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		buf[i] = byte(x)
	}
	return buf
}

func readOne(t *testing.T, c *ring.Consumer) ([]byte, bool) {
	t.Helper()
	var got []byte
	ok, err := c.TryRead(func(m []byte) { got = append([]byte{}, m...) })
	require.NoError(t, err)
	return got, ok
}

func TestConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ring.Config
	}{
		{"not a power of two", ring.Config{Capacity: 3000}},
		{"too small", ring.Config{Capacity: 512}},
		{"max message above capacity/8", ring.Config{Capacity: 1 << 12, MaxMessage: 1<<9 + 1}},
		{"spsc with slots", ring.Config{Capacity: 1 << 12, Slots: 4}},
		{"mpsc with too many slots", ring.Config{Kind: ring.MPSC, Capacity: 1 << 12, Slots: ring.MaxSlots + 1}},
		{"unknown kind", ring.Config{Kind: 7, Capacity: 1 << 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ring.Size(tc.cfg)
			require.Error(t, err)
		})
	}
}

// TestWrapEverySize writes every payload size from 0 to the maximum, many
// times, through a small ring, so every size meets the end of the data area
// at every alignment and padding is exercised.
func TestWrapEverySize(t *testing.T) {
	const capacity, maxMsg = 1 << 12, 1 << 9
	p, c, _ := newRing(t, capacity, maxMsg)
	buf := make([]byte, maxMsg)
	var seq uint64
	for round := 0; round < 8; round++ {
		for n := 0; n <= maxMsg; n++ {
			msg := fill(buf[:n], seq)
			require.NoError(t, p.TryWrite(msg), "size %d", n)
			got, ok := readOne(t, c)
			require.True(t, ok)
			require.Equal(t, msg, got, "size %d round %d", n, round)
			seq++
		}
		// Shift the phase so sizes meet the wrap at other offsets.
		require.NoError(t, p.TryWrite(buf[:8*round+1]))
		_, ok := readOne(t, c)
		require.True(t, ok)
	}
	st := c.Ring().Stats()
	require.Equal(t, st.MsgsIn, st.MsgsOut)
	require.Equal(t, st.BytesIn, st.BytesOut)
	require.Zero(t, st.Depth)
}

func TestFullAndPadding(t *testing.T) {
	const capacity = 1 << 10
	p, c, _ := newRing(t, capacity, 128)
	msg := make([]byte, 120) // record size 128
	// Shift the phase by one 112-byte record, so the tail is 16 bytes when
	// seven 128-byte records follow.
	require.NoError(t, p.TryWrite(make([]byte, 100)))
	_, ok := readOne(t, c)
	require.True(t, ok)
	for i := 0; i < 7; i++ {
		require.NoError(t, p.TryWrite(fill(msg, uint64(i))))
	}
	// 128 free, but a 128-byte record needs 16 of padding first.
	require.ErrorIs(t, p.TryWrite(msg), ring.ErrFull)
	require.NoError(t, p.TryWrite(make([]byte, 8)), "a 16-byte record fits the tail exactly")
	require.ErrorIs(t, p.TryWrite(msg), ring.ErrFull, "112 free from index 0, 128 needed")
	_, ok = readOne(t, c)
	require.True(t, ok)
	require.NoError(t, p.TryWrite(fill(msg, 99)), "now 240 free from index 0")
	// Where each record went: the 16-byte one fills the tail exactly (no
	// padding before it), and the next starts at index 0 (position 1024).
	recs, err := c.Ring().Peek(16)
	require.NoError(t, err)
	var at []uint64
	for _, rec := range recs {
		at = append(at, rec.Pos)
	}
	require.Equal(t, []uint64{240, 368, 496, 624, 752, 880, 1008, 1024}, at)
	st := c.Ring().Stats()
	require.Equal(t, uint64(1024+128), st.ProducerPos)
	require.GreaterOrEqual(t, st.HighWater, uint64(7*128))
	for i := 1; i < 7; i++ {
		got, ok := readOne(t, c)
		require.True(t, ok)
		require.Equal(t, fill(make([]byte, 120), uint64(i)), got)
	}
	got, ok := readOne(t, c)
	require.True(t, ok)
	require.Len(t, got, 8)
	got, ok = readOne(t, c)
	require.True(t, ok)
	require.Equal(t, fill(make([]byte, 120), 99), got)
	_, ok = readOne(t, c)
	require.False(t, ok)
}

func TestTooLarge(t *testing.T) {
	p, _, _ := newRing(t, 1<<12, 100)
	require.ErrorIs(t, p.TryWrite(make([]byte, 101)), ring.ErrTooLarge)
	_, err := p.Claim(101)
	require.ErrorIs(t, err, ring.ErrTooLarge)
	require.NoError(t, p.TryWrite(make([]byte, 100)))
}

func TestClaimCommitAbort(t *testing.T) {
	p, c, _ := newRing(t, 1<<12, 256)
	b, err := p.Claim(10)
	require.NoError(t, err)
	copy(b, "aborted!!!")
	_, err = p.Claim(1)
	require.ErrorIs(t, err, ring.ErrClaimPending)
	require.ErrorIs(t, p.TryWrite([]byte("x")), ring.ErrClaimPending)
	p.Abort()
	_, ok := readOne(t, c)
	require.False(t, ok, "an aborted claim is never visible")
	require.ErrorIs(t, p.Commit(), ring.ErrNoClaim)

	b, err = p.Claim(200)
	require.NoError(t, err)
	require.Len(t, b, 200)
	n := copy(b, "hello")
	require.NoError(t, p.CommitN(n))
	got, ok := readOne(t, c)
	require.True(t, ok)
	require.Equal(t, "hello", string(got))

	b, err = p.Claim(3)
	require.NoError(t, err)
	copy(b, "abc")
	require.Error(t, p.CommitN(4))
	require.NoError(t, p.Commit())
	got, _ = readOne(t, c)
	require.Equal(t, "abc", string(got))
	st := c.Ring().Stats()
	require.Equal(t, uint64(2), st.MsgsIn)
	require.Equal(t, uint64(8), st.BytesIn)
}

func TestBatch(t *testing.T) {
	p, c, _ := newRing(t, 1<<10, 64)
	var msgs [][]byte
	for i := 0; i < 40; i++ {
		msgs = append(msgs, fill(make([]byte, 24), uint64(i))) // 32 bytes each: 32 fit
	}
	n, err := p.WriteBatch(msgs)
	require.NoError(t, err)
	require.Equal(t, 32, n)
	n2, err := p.WriteBatch(msgs[n:])
	require.ErrorIs(t, err, ring.ErrFull)
	require.Zero(t, n2)

	var got [][]byte
	k, err := c.ReadBatch(10, func(m []byte) { got = append(got, bytes.Clone(m)) })
	require.NoError(t, err)
	require.Equal(t, 10, k)
	k, err = c.ReadBatch(100, func(m []byte) { got = append(got, bytes.Clone(m)) })
	require.NoError(t, err)
	require.Equal(t, 22, k)
	require.Equal(t, msgs[:32], got)

	big := [][]byte{make([]byte, 8), make([]byte, 65), make([]byte, 8)}
	n, err = p.WriteBatch(big)
	require.ErrorIs(t, err, ring.ErrTooLarge)
	require.Equal(t, 1, n)
	k, err = c.ReadBatch(10, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 1, k)
}

// TestPositionsWrap2to64 starts positions just below 2^64 and runs through
// the overflow: index = pos & (capacity-1) and depth = prod - cons hold in
// modular arithmetic.
func TestPositionsWrap2to64(t *testing.T) { spscModes(t, positionsWrap2to64) }

func positionsWrap2to64(t *testing.T, opts ...func(*ring.Config)) {
	const capacity = 1 << 12
	start := ^uint64(0) - 3*capacity + 1
	p, c, region := newRingAt(t, capacity, 512, start, opts...)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 512)
	var wseq, rseq uint64
	for i := 0; i < 20000; i++ {
		n := rng.IntN(513)
		if err := p.TryWrite(fill(buf[:n], wseq)); err == nil {
			wseq++
		} else {
			require.ErrorIs(t, err, ring.ErrFull)
		}
		if rng.IntN(2) == 0 {
			_, err := c.ReadBatch(rng.IntN(4)+1, func(m []byte) {
				require.Equal(t, fill(make([]byte, len(m)), rseq), m)
				rseq++
			})
			require.NoError(t, err)
		}
	}
	pos := binary.LittleEndian.Uint64(region[ring.OffProducerPos:])
	require.Less(t, pos, start, "positions wrapped through 2^64")
	require.Greater(t, wseq, uint64(100))
	st := c.Ring().Stats()
	require.LessOrEqual(t, st.Depth, uint64(capacity))
}

// queueModel is the reference: a plain slice queue with the same byte
// accounting as the ring.
type queueModel struct {
	msgs  [][]byte
	bytes uint64
}

// TestModelRandom runs random operations against the ring and a model queue
// and checks they agree: every write accepted or refused exactly when the
// model says it fits, every read returning the model's head.
func TestModelRandom(t *testing.T) { spscModes(t, modelRandom) }

func modelRandom(t *testing.T, opts ...func(*ring.Config)) {
	ops := 2_000_000
	if testing.Short() || raceEnabled {
		ops = 300_000
	}
	for _, geo := range []struct{ capacity, max uint64 }{{1 << 10, 128}, {1 << 13, 1 << 10}, {1 << 16, 1 << 13}} {
		p, c, _ := newRing(t, geo.capacity, geo.max, opts...)
		rng := rand.New(rand.NewPCG(geo.capacity, 7))
		var m queueModel
		var pos, cons uint64 // the model's positions
		buf := make([]byte, geo.max+1)
		var seq uint64
		limit := geo.capacity
		if c.Ring().HeaderCommit() {
			limit -= 8 // the word at the producer position stays free
		}
		free := func() uint64 { return limit - (pos - cons) }
		fits := func(n uint64) (bool, uint64) {
			need := ring.RecordSize(n)
			tail := geo.capacity - pos%geo.capacity
			total := need
			if need > tail {
				total += tail
			}
			return total <= free(), total
		}
		for i := 0; i < ops/3; i++ {
			switch op := rng.IntN(10); {
			case op < 5: // write or claim
				n := uint64(rng.IntN(int(geo.max) + 1))
				if rng.IntN(50) == 0 {
					n = geo.max + 1
				}
				msg := fill(buf[:n], seq)
				var err error
				if op == 4 {
					var b []byte
					b, err = p.Claim(int(n))
					if err == nil {
						copy(b, msg)
						if rng.IntN(4) == 0 {
							p.Abort()
							continue
						}
						err = p.Commit()
					}
				} else {
					err = p.TryWrite(msg)
				}
				if n > geo.max {
					require.ErrorIs(t, err, ring.ErrTooLarge)
					continue
				}
				ok, total := fits(n)
				if !ok {
					require.ErrorIs(t, err, ring.ErrFull, "write of %d with %d free", n, free())
					continue
				}
				require.NoError(t, err)
				pos += total
				m.msgs = append(m.msgs, append([]byte{}, msg...))
				m.bytes += n
				seq++
			default: // read a batch
				max := rng.IntN(5) + 1
				k, err := c.ReadBatch(max, func(got []byte) {
					require.NotEmpty(t, m.msgs)
					require.Equal(t, m.msgs[0], got)
					m.msgs = m.msgs[1:]
				})
				require.NoError(t, err)
				require.LessOrEqual(t, k, max)
				if k < max {
					require.Empty(t, m.msgs, "a short batch means the ring is empty")
					cons = pos
				} else {
					// Positions are hidden; resynchronise from the stats.
					cons = c.Ring().Stats().ConsumerPos
				}
			}
		}
		st := c.Ring().Stats()
		require.Equal(t, pos, st.ProducerPos)
		require.Equal(t, st.MsgsIn-st.MsgsOut, uint64(len(m.msgs)))
	}
}

// TestStressTwoGoroutines moves random-size messages between two goroutines
// with checksums; run it with -race.
func TestStressTwoGoroutines(t *testing.T) { spscModes(t, stressTwoGoroutines) }

func stressTwoGoroutines(t *testing.T, opts ...func(*ring.Config)) {
	count := 2_000_000
	if testing.Short() || raceEnabled {
		count = 200_000
	}
	p, c, _ := newRing(t, 1<<14, 1<<10, opts...)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		buf := make([]byte, 1<<10)
		for seq := uint64(0); seq < uint64(count); {
			msg := fill(buf[:rng.IntN(len(buf)+1)], seq)
			if rng.IntN(3) == 0 {
				b, err := p.Claim(len(msg))
				if errors.Is(err, ring.ErrFull) {
					continue
				}
				if err != nil {
					panic(err)
				}
				copy(b, msg)
				if err := p.Commit(); err != nil {
					panic(err)
				}
				seq++
				continue
			}
			switch err := p.TryWrite(msg); {
			case err == nil:
				seq++
			case errors.Is(err, ring.ErrFull):
			default:
				panic(err)
			}
		}
	}()
	var seq uint64
	var bad error
	sum := crc32.NewIEEE()
	for seq < uint64(count) && bad == nil {
		_, err := c.ReadBatch(64, func(m []byte) {
			if bad == nil && !bytes.Equal(m, fill(make([]byte, len(m)), seq)) {
				bad = errors.New("payload mismatch")
			}
			sum.Write(m)
			seq++
		})
		require.NoError(t, err)
	}
	wg.Wait()
	require.NoError(t, bad)
	st := c.Ring().Stats()
	require.Equal(t, uint64(count), st.MsgsIn)
	require.Equal(t, uint64(count), st.MsgsOut)
}

func TestAttachRefusals(t *testing.T) {
	cfg := ring.Config{Capacity: 1 << 12}
	size, err := ring.Size(cfg)
	require.NoError(t, err)
	fresh := func() []byte {
		r := make([]byte, size)
		require.NoError(t, ring.Format(r, cfg))
		return r
	}
	rechecksum := func(r []byte) {
		binary.LittleEndian.PutUint32(r[ring.OffChecksum:], crc32.Checksum(r[:ring.OffChecksum], crc32.MakeTable(crc32.Castagnoli)))
	}
	for _, tc := range []struct {
		name  string
		spoil func([]byte) []byte
		want  error
	}{
		{"short region", func(r []byte) []byte { return r[:100] }, ring.ErrCorrupt},
		{"magic", func(r []byte) []byte { r[0] ^= 1; return r }, ring.ErrCorrupt},
		{"version", func(r []byte) []byte { r[ring.OffVersion] += 10; return r }, ring.ErrIncompatible},
		{"version of another configuration", func(r []byte) []byte {
			binary.LittleEndian.PutUint32(r[ring.OffVersion:], ring.VersionSharedOverwrite)
			rechecksum(r)
			return r
		}, ring.ErrCorrupt},
		{"checksum", func(r []byte) []byte { r[ring.OffCapacity] ^= 0x40; return r }, ring.ErrCorrupt},
		{"capacity", func(r []byte) []byte {
			binary.LittleEndian.PutUint64(r[ring.OffCapacity:], 1<<20)
			rechecksum(r)
			return r
		}, ring.ErrCorrupt},
		{"truncated data", func(r []byte) []byte { return r[:len(r)-8] }, ring.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ring.Attach(tc.spoil(fresh()))
			require.ErrorIs(t, err, tc.want)
		})
	}
}

// TestCorruptPositionsAndRecords flips positions and record headers under a
// live consumer and producer: each gets ErrCorrupt, never a panic, and stays failed.
func TestCorruptPositionsAndRecords(t *testing.T) {
	t.Run("producer position beyond capacity", func(t *testing.T) {
		p, c, region := newRing(t, 1<<12, 256)
		require.NoError(t, p.TryWrite([]byte("ok")))
		pending, perr := c.Pending() // caches the producer position
		require.NoError(t, perr)
		require.True(t, pending)
		binary.LittleEndian.PutUint64(region[ring.OffProducerPos:], 1<<40)
		// The cached position still covers "ok": it is delivered, then the reload fails.
		var got []string
		_, err := c.ReadBatch(10, func(m []byte) { got = append(got, string(m)) })
		require.ErrorIs(t, err, ring.ErrCorrupt)
		require.Equal(t, []string{"ok"}, got)
		_, err = c.TryRead(func([]byte) {})
		require.ErrorIs(t, err, ring.ErrCorrupt, "sticky")
	})
	t.Run("consumer position ahead of producer", func(t *testing.T) {
		p, _, region := newRing(t, 1<<10, 64)
		binary.LittleEndian.PutUint64(region[ring.OffConsumerPos:], 4096)
		for i := 0; i < 100; i++ {
			if err := p.TryWrite(make([]byte, 64)); err != nil {
				require.ErrorIs(t, err, ring.ErrCorrupt)
				return
			}
		}
		t.Fatal("producer never noticed")
	})
	for _, tc := range []struct {
		name   string
		header uint64
		writes int // records of 208 bytes written before the damage
	}{
		// A committed data record of a legal length (250: 264 bytes)
		// that runs past the 208 bytes published after the first
		// record: only the "size <= published bytes" check stops it.
		{"length beyond published", 250 | 1<<48, 2},
		{"unknown type", 8 | 9<<48, 5},
		{"reserved bits", 8 | 1<<48 | 1<<60, 5},
		{"pending type in spsc", 8 | 3<<48, 5},
		{"length above max message", 300 | 1<<48, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, c, region := newRing(t, 1<<12, 256)
			for i := 0; i < tc.writes; i++ {
				require.NoError(t, p.TryWrite(make([]byte, 300-8)[:200]))
			}
			binary.LittleEndian.PutUint64(region[ring.ControlSize+ring.RecordSize(200):], tc.header)
			n, err := c.ReadBatch(10, func([]byte) {})
			require.ErrorIs(t, err, ring.ErrCorrupt)
			require.Equal(t, 1, n, "the record before the damage is delivered")
		})
	}
}

func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	spscP, spscC, _ := newRing(t, 1<<16, 1<<10)
	r, mpscC := newMPSC(t, 1<<16, 1<<10, 2)
	for _, pc := range []struct {
		p *ring.Producer
		c *ring.Consumer
	}{{spscP, spscC}, {slotProducer(t, r, 1), mpscC}} {
		p, c := pc.p, pc.c
		msg := make([]byte, 64)
		var sink int
		fn := func(m []byte) { sink += len(m) }
		batch := [][]byte{msg, msg, msg, msg}
		allocs := testing.AllocsPerRun(1000, func() {
			_ = p.TryWrite(msg)
			b, _ := p.Claim(64)
			copy(b, msg)
			_ = p.Commit()
			_, _ = p.WriteBatch(batch)
			_, _ = c.TryRead(fn)
			_, _ = c.ReadBatch(16, fn)
		})
		require.Zero(t, allocs)
		require.Positive(t, sink)
	}
}

// pressureRing formats a ring of cfg with pressure levels of 2048 bytes
// (high) and 1024 (low), and opens its producer (slot 0 in MPSC rings) and
// consumer.
func pressureRing(t *testing.T, cfg ring.Config) (*ring.Ring, *ring.Producer, *ring.Consumer) {
	t.Helper()
	_, r := formatRing(t, cfg)
	require.NoError(t, r.SetPressureLevels(2048, 1024))
	p, err := newProducer(r)
	require.NoError(t, err)
	c, err := r.NewConsumer()
	require.NoError(t, err)
	return r, p, c
}

// TestPressureHysteresis: pressure rises when the depth reaches the high
// level and falls only at or below the low one.
func TestPressureHysteresis(t *testing.T) {
	for _, kind := range []ring.Kind{ring.SPSC, ring.MPSC} {
		r, p, c := pressureRing(t, ring.Config{Kind: kind, Capacity: 1 << 12, MaxMessage: 120})
		require.Error(t, r.SetPressureLevels(1024, 2048), "low above high")
		msg := make([]byte, 120) // 128-byte records
		for i := 0; i < 15; i++ {
			require.NoError(t, p.TryWrite(msg))
			require.Zero(t, p.Pressure(), "depth %d below the high level", (i+1)*128)
		}
		require.NoError(t, p.TryWrite(msg)) // depth 2048
		require.Equal(t, uint32(1), p.Pressure(), "%v: rises at the high level", kind)
		for i := 0; i < 8; i++ {
			require.NoError(t, p.TryWrite(msg))
		}
		// Drain to 1152 bytes: above the low level, pressure holds.
		_, err := c.ReadBatch(24-9, func([]byte) {})
		require.NoError(t, err)
		c, err = r.NewConsumer() // a consumer that loads the producer position now: depth 1152, exactly
		require.NoError(t, err)
		require.Equal(t, uint32(1), p.Pressure(), "%v: holds above the low level", kind)
		_, err = c.ReadBatch(100, func([]byte) {}) // drains and reloads: depth 0
		require.NoError(t, err)
		require.Zero(t, p.Pressure(), "%v: falls at the low level", kind)
		st := r.Stats()
		require.Equal(t, uint64(2), st.PressureChanges)
		require.Equal(t, uint64(2048), st.PressureHigh)
	}
}

// TestWindow: producers treat the consumer's window as the capacity.
func TestWindow(t *testing.T) {
	p, c, region := newRing(t, 1<<12, 120)
	r, err := ring.Attach(region)
	require.NoError(t, err)
	r.SetWindow(512)
	msg := make([]byte, 120)
	for i := 0; i < 4; i++ {
		require.NoError(t, p.TryWrite(msg))
	}
	require.ErrorIs(t, p.TryWrite(msg), ring.ErrFull, "the window of 512 bytes is full")
	require.Equal(t, uint64(512), r.Stats().Depth)
	r.SetWindow(1024)
	for i := 0; i < 4; i++ {
		require.NoError(t, p.TryWrite(msg))
	}
	require.ErrorIs(t, p.TryWrite(msg), ring.ErrFull)
	r.SetWindow(256) // narrower than the depth: nothing more until it drains
	_, err = c.ReadBatch(5, func([]byte) {})
	require.NoError(t, err)
	require.ErrorIs(t, p.TryWrite(msg), ring.ErrFull, "depth 384 > window 256")
	_, err = c.ReadBatch(2, func([]byte) {})
	require.NoError(t, err)
	require.NoError(t, p.TryWrite(msg), "depth 128 + 128 fits 256")
	r.SetWindow(0)
	require.Equal(t, uint64(0), r.Stats().Window)
}

func TestPeekAndResetHighWater(t *testing.T) {
	p, c, region := newRing(t, 1<<12, 100)
	r, err := ring.Attach(region)
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		require.NoError(t, p.TryWrite([]byte(fmt.Sprint("m", i))))
	}
	recs, err := r.Peek(3)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, "m0", string(recs[0].Payload))
	recs, err = r.Peek(100)
	require.NoError(t, err)
	require.Len(t, recs, 5, "peeking consumed nothing")
	_, err = c.ReadBatch(4, func([]byte) {})
	require.NoError(t, err)
	recs, err = r.Peek(100)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "m4", string(recs[0].Payload))
	require.Equal(t, uint64(80), r.Stats().HighWater)
	r.ResetHighWater()
	require.Equal(t, uint64(16), r.Stats().HighWater)
	binary.LittleEndian.PutUint64(region[ring.ControlSize+4*16:], 1<<48|9999) // damage m4's header
	_, err = r.Peek(100)
	require.ErrorIs(t, err, ring.ErrCorrupt)
}

// TestHeaderCommitLeftovers: in a header-commit ring, free space must read
// as zero to the consumer. A claim filled and then aborted, or committed
// shorter than it was filled, must not leave bytes that the consumer would
// take for the next record's header; and the version is 2.
func TestHeaderCommitLeftovers(t *testing.T) {
	p, c, region := newRing(t, 1<<11, 200, headerCommit)
	require.Equal(t, ring.VersionSharedOverwrite, binary.LittleEndian.Uint32(region[ring.OffVersion:]))
	require.True(t, c.Ring().HeaderCommit())
	junk := bytes.Repeat([]byte{0xff}, 200)
	for lap := 0; lap < 20; lap++ {
		b, err := p.Claim(200)
		require.NoError(t, err)
		copy(b, junk)
		p.Abort()
		b, err = p.Claim(200)
		require.NoError(t, err)
		copy(b, junk)
		copy(b, "short")
		require.NoError(t, p.CommitN(5))
		require.NoError(t, p.TryWrite([]byte("next")))
		var got []string
		n, err := c.ReadBatch(10, func(m []byte) { got = append(got, string(m)) })
		require.NoError(t, err)
		require.Equal(t, 2, n, "lap %d", lap)
		require.Equal(t, []string{"short", "next"}, got)
	}
	_, err := ring.Size(ring.Config{Kind: ring.MPSC, HeaderCommit: true})
	require.Error(t, err)
	_, err = ring.Size(ring.Config{HeaderCommit: true, Overwrite: true})
	require.Error(t, err)
}

// TestHeaderCommitProducerRestart: a header-commit producer killed between
// committing a record and storing its position leaves a record the
// consumer can read past the published position. Its successor resumes
// after it, whether the consumer read it already or not: nothing read
// twice, nothing overwritten, nothing lost.
func TestHeaderCommitProducerRestart(t *testing.T) {
	for _, readFirst := range []bool{false, true} {
		p, c, _ := newRing(t, 1<<10, 100, headerCommit)
		r := c.Ring()
		var got []string
		read := func() {
			_, err := c.ReadBatch(100, func(m []byte) { got = append(got, string(m)) })
			require.NoError(t, err)
		}
		seq := 0
		for lap := 0; lap < 30; lap++ { // through many wraps
			require.NoError(t, p.TryWrite([]byte(fmt.Sprint("w", seq))))
			seq++
			require.NoError(t, ring.CommitDying(p, []byte(fmt.Sprint("d", seq))))
			seq++
			if readFirst {
				read()
			}
			var err error
			p, err = r.NewProducer()
			require.NoError(t, err, "lap %d", lap)
			require.NoError(t, p.TryWrite([]byte(fmt.Sprint("n", seq))))
			seq++
			read()
		}
		require.Len(t, got, seq)
		for k, m := range got {
			require.Equal(t, fmt.Sprint(k), m[1:], "message %d", k)
		}
	}
}

// TestFreshConsumerNearWrap: a consumer that starts within one capacity
// below 2^64 (its fast path's end of the published bytes still unset)
// loads the producer position before it reads: an empty ring reads
// nothing, and what is written then is read back, none of it refused as
// damage.
func TestFreshConsumerNearWrap(t *testing.T) { spscModes(t, freshConsumerNearWrap) }

func freshConsumerNearWrap(t *testing.T, opts ...func(*ring.Config)) {
	const capacity = 1 << 12
	for _, below := range []uint64{8, 2048, capacity} {
		p, c, _ := newRingAt(t, capacity, 512, -below, opts...)
		n, err := c.ReadBatch(4, func([]byte) { t.Fatal("read from an empty ring") })
		require.NoError(t, err, "%d below 2^64", below)
		require.Zero(t, n)
		for k := uint64(0); k < 3; k++ {
			require.NoError(t, p.TryWrite(fill(make([]byte, 100), k)))
		}
		var got uint64
		_, err = c.ReadBatch(8, func(m []byte) {
			require.Equal(t, fill(make([]byte, 100), got), m)
			got++
		})
		require.NoError(t, err, "%d below 2^64", below)
		require.Equal(t, uint64(3), got)
	}
}
