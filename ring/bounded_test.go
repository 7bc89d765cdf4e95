package ring_test

import (
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// boundedRing is a plain SPSC ring in Go memory with its producer and
// consumer.
func boundedRing(t *testing.T, cfg ring.Config) (*ring.Ring, *ring.Producer, *ring.Consumer) {
	t.Helper()
	size, err := ring.Size(cfg)
	require.NoError(t, err)
	region := make([]byte, size)
	require.NoError(t, ring.Format(region, cfg))
	r := attach(t, region)
	p, err := r.NewProducer()
	require.NoError(t, err)
	c, err := r.NewConsumer()
	require.NoError(t, err)
	return r, p, c
}

// TestReadBoundedByCapacity: a producer that ignores the consumer position
// (a damaged or hostile co-tenant) and keeps publishing while one read call
// runs cannot keep that call reading: the call stops with ErrCorrupt once
// the producer position is more than a capacity past the position the call
// began at (the released one), having read at most a capacity. For the
// fast path (ReadBatch on a plain ring), the general path (readBatch's
// reloadProducer) and the pull-style read (Next, EndBatch). The records
// vary in size, so the producer also publishes padding at each wrap; the
// producer writes one record per record read, from the callback (between
// two Next calls), so the interleaving is the test's, not the scheduler's.
// Without the bound, each call reads the whole budget (4 capacities) and
// returns no error.
func TestReadBoundedByCapacity(t *testing.T) {
	const capacity = 1 << 12
	for _, path := range []string{"fast", "general", "timestamps", "pull"} {
		t.Run(path, func(t *testing.T) {
			cfg := ring.Config{Capacity: capacity, MaxMessage: 256, Timestamps: path == "timestamps"}
			_, p, c := boundedRing(t, cfg)
			if path == "general" {
				ring.SlowReads(c)
			}
			require.Equal(t, path == "fast" || path == "pull", c.Fast())
			msg := make([]byte, 256)
			var k, written uint64
			// write is the hostile producer: one record, ignoring the
			// consumer position, until a budget of 4 capacities is
			// spent (so that the test ends without the bound too).
			write := func() {
				if written > 4*capacity {
					return
				}
				n := (k * 37) % 200
				k++
				ring.ForgetConsumer(p)
				require.NoError(t, p.TryWrite(msg[:n]))
				written += ring.RecordSize(n)
			}
			for range 4 {
				write()
			}
			start := c.Position()
			var err error
			if path == "pull" {
				pos := start
				for {
					_, next, ok := c.Next(pos)
					pos = next
					if !ok {
						break
					}
					require.LessOrEqual(t, pos-start, uint64(capacity), "a pull-style batch read past a capacity")
					write()
				}
				require.ErrorIs(t, c.Err(), ring.ErrCorrupt, "Next stopped without finding the producer position damaged (read %d bytes)", pos-start)
				err = c.EndBatch(pos, 0, 0, false)
			} else {
				_, err = c.ReadBatch(1<<30, func([]byte) { write() })
			}
			require.ErrorIs(t, err, ring.ErrCorrupt, "read %d bytes", c.Position()-start)
			require.ErrorContains(t, err, "producer position")
			require.LessOrEqual(t, c.Position()-start, uint64(capacity))
			require.Less(t, written, uint64(4*capacity), "the read went on while the producer published its whole budget")
		})
	}
}

// TestEndBatchRefusesForeignPosition: EndBatch stores only a position Next
// could have returned: 8-aligned, from the released position to the
// producer position last validated. Anything else returns ErrInvalid and
// changes nothing: the consumer position (the caller's and the region's),
// the counters, the sticky error; a right position then ends the batch.
func TestEndBatchRefusesForeignPosition(t *testing.T) {
	r, p, c := boundedRing(t, ring.Config{Capacity: 1 << 12, MaxMessage: 256})
	for range 3 {
		require.NoError(t, p.TryWrite(make([]byte, 10)))
	}
	pos := c.Position()
	_, next, ok := c.Next(pos)
	require.True(t, ok)
	_, next2, ok := c.Next(next)
	require.True(t, ok)
	require.NoError(t, c.EndBatch(next, 1, 10, false))
	require.Equal(t, next, c.Position())
	published := next + 2*ring.RecordSize(10) // what the producer position says
	before := r.Stats()
	for _, bad := range []uint64{
		pos,                       // below the released position: takes back room
		next - 8,                  // the same, by a word
		published + 8,             // past what is published
		published + 1<<12,         // a capacity past it
		next + 3,                  // not 8-aligned
		next2 + 4,                 // the same
		^uint64(0) &^ 7,           // far below (wrapped)
		next + uint64(1)<<63 + 16, // far above
	} {
		err := c.EndBatch(bad, 1, 10, true)
		require.ErrorIs(t, err, ring.ErrInvalid, "EndBatch(%d) with released %d, published %d", bad, next, published)
		require.NotErrorIs(t, err, ring.ErrCorrupt)
		require.Equal(t, next, c.Position())
		require.NoError(t, c.Err())
		after := r.Stats()
		require.Equal(t, before.MsgsOut, after.MsgsOut)
		require.Equal(t, before.BytesOut, after.BytesOut)
		require.Equal(t, before.Depth, after.Depth, "the region's consumer position moved")
	}
	require.NoError(t, c.EndBatch(next2, 1, 10, false))
	require.Equal(t, next2, c.Position())
	require.NoError(t, c.EndBatch(published, 0, 0, false), "the producer position itself is a position Next may return")
	require.Equal(t, published, c.Position())
}

// TestHighWaterGivesUp: a co-tenant that changes the high watermark
// between each load and compare-and-swap (the hook plays it, keeping the
// word below the depth, so the update is always still wanted) does not
// keep the consumer looping: it gives up after ring.CASTries tries, the
// read goes on, and the next reload raises the watermark.
func TestHighWaterGivesUp(t *testing.T) {
	r, p, c := boundedRing(t, ring.Config{Capacity: 1 << 12, MaxMessage: 256})
	hw := ring.HighWaterWord(r)
	calls := 0
	ring.SetRingHook(r, func(step int) {
		if step != ring.StepHighWaterCAS {
			return
		}
		calls++
		if calls <= 100 { // then stop, so that the test ends without the bound
			hw.Store(uint64(calls % 2))
		}
	})
	require.NoError(t, p.TryWrite(make([]byte, 64)))
	ok, err := c.Pending() // loads the producer position: raises the watermark
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, ring.CASTries, calls, "compare-and-swaps tried against a word that changed each time")
	require.Less(t, hw.Load(), uint64(2), "the watermark was raised past the co-tenant")

	ring.SetRingHook(r, nil)
	require.NoError(t, p.TryWrite(make([]byte, 64)))
	n, err := c.ReadBatch(10, func([]byte) {}) // reloads after the first
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, ring.RecordSize(64), hw.Load(), "the next reload raises it (to the depth from the consumer's cursor)")
}

// TestPressureRaiseGivesUp: a co-tenant that flips another bit of the
// pressure word between each load and compare-and-swap does not keep the
// producer looping: it gives up after ring.CASTries tries, the write still
// succeeds, and the next write that reaches the level raises the bit.
func TestPressureRaiseGivesUp(t *testing.T) {
	r, p, _ := boundedRing(t, ring.Config{Capacity: 1 << 12, MaxMessage: 256})
	require.NoError(t, r.SetPressureLevels(256, 0))
	pw := ring.PressureWord(r)
	calls := 0
	ring.SetRingHook(r, func(step int) {
		if step != ring.StepPressureCAS {
			return
		}
		calls++
		if calls <= 100 {
			pw.Store(pw.Load() ^ ring.PressureDelay)
		}
	})
	msg := make([]byte, 100)
	for range 2 { // 2 records of 112 bytes: below the level
		require.NoError(t, p.TryWrite(msg))
	}
	require.Zero(t, calls)
	require.NoError(t, p.TryWrite(msg)) // 336 bytes: at the level
	require.Equal(t, ring.CASTries, calls, "compare-and-swaps tried against a word that changed each time")
	require.Zero(t, pw.Load()&ring.PressureDepth, "given up: not raised")

	ring.SetRingHook(r, nil)
	require.NoError(t, p.TryWrite(msg))
	require.NotZero(t, pw.Load()&ring.PressureDepth, "the next write at the level raises it")
}

// TestOverwriteReadBounded: producers that publish without end while an
// overwrite ring's consumer reads (here a hostile one publishing padding,
// from the hook in each release, so the interleaving is the test's) do not
// keep one read call looping: it returns after a capacity's worth of
// records that delivered nothing (8-byte padding records here), with
// nothing delivered and no error, and the next call reads on. Without the
// bound the call loops until the hostile producer's budget (4 capacities'
// worth) is spent.
func TestOverwriteReadBounded(t *testing.T) {
	const capacity = 1 << 12
	cfg := ring.Config{Kind: ring.MPSC, Overwrite: true, Capacity: capacity, MaxMessage: 256, Slots: 2}
	size, err := ring.Size(cfg)
	require.NoError(t, err)
	region := make([]byte, size)
	require.NoError(t, ring.Format(region, cfg))
	r := attach(t, region)
	c, err := r.NewConsumer()
	require.NoError(t, err)
	for range 4 {
		ring.PublishPadding(r)
	}
	calls := 0
	ring.SetRingHook(r, func(step int) {
		if step != ring.StepReleaseMarked {
			return
		}
		calls++
		if calls <= 4*capacity/8 {
			ring.PublishPadding(r)
		}
	})
	n, err := c.ReadBatch(1, func([]byte) { t.Fatal("padding delivered") })
	require.NoError(t, err)
	require.Zero(t, n)
	require.LessOrEqual(t, calls, capacity/8+1, "releases in one call")
	require.Greater(t, calls, 0)

	ring.SetRingHook(r, nil)
	for range 4 { // drains: the padding left is at most 4 records
		n, err = c.ReadBatch(1, func([]byte) { t.Fatal("padding delivered") })
		require.NoError(t, err)
		require.Zero(t, n)
	}
	require.Zero(t, r.Stats().Depth, "drained")
}
