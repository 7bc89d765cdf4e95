package ipc_test

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// holdRings are the ring kinds a consumer may hold its reads in.
var holdRings = []struct {
	name string
	cfg  ipc.Config
}{
	{"spsc", ipc.Config{Capacity: 4096}},
	{"spsc sequences", ipc.Config{Capacity: 4096, Sequences: true}},
	{"spsc header commit", ipc.Config{Capacity: 4096, HeaderCommit: true}},
	{"spsc header commit sequences", ipc.Config{Capacity: 4096, HeaderCommit: true, Sequences: true, Timestamps: true}},
	{"mpsc", ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 4096}},
	{"mpsc sequences", ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 4096, Sequences: true}},
}

// heldRecord is what a test keeps of a Record a held consumer delivered.
type heldRecord struct {
	data []byte // the zero-copy Data, valid until released
	pos  uint64
	seq  uint64
}

// batchHeld ranges c.Batch(ctx, max) and returns what it yielded.
func batchHeld(t *testing.T, c *ipc.Consumer, max int) []heldRecord {
	t.Helper()
	var out []heldRecord
	for rec, err := range c.Batch(context.Background(), max) {
		require.NoError(t, err)
		out = append(out, heldRecord{rec.Data, rec.Pos, rec.Seq})
	}
	return out
}

// A held consumer delivers and releases nothing: the consumer position in
// the segment stays where it was (the depth and the high watermark count
// the held bytes), Data stays valid after the loop, and Release(pos) hands
// back up to a record's Pos. A successor, after Close, resumes at the
// released position and delivers again what was held and not released,
// nothing else.
func TestHoldRelease(t *testing.T) {
	for _, tc := range holdRings {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ipc.Create(testutil.Name(t), tc.cfg)
			require.NoError(t, err)
			defer r.Close()
			p, err := r.Producer(nil)
			require.NoError(t, err)
			c, err := r.Consumer(&ipc.ConsumerConfig{Hold: true})
			require.NoError(t, err)
			ctx := context.Background()
			for i := range 10 {
				require.NoError(t, p.Write(ctx, msgN(i)))
			}

			recs := batchHeld(t, c, 4)
			recs = append(recs, batchHeld(t, c, 100)...)
			require.Len(t, recs, 10)
			st, err := r.Stats()
			require.NoError(t, err)
			require.Zero(t, st.ConsumerPos, "reads release nothing")
			require.Equal(t, uint64(10), st.MsgsOut, "messages are counted when delivered")
			if !tc.cfg.HeaderCommit { // a header-commit ring publishes its producer position lazily
				require.Equal(t, st.ProducerPos, st.Depth, "held bytes are in the depth")
				require.GreaterOrEqual(t, st.HighWater, recs[9].pos, "and in the high watermark")
			}
			for i, rec := range recs {
				require.Equal(t, msgN(i), rec.data, "held Data stays valid")
				if i > 0 {
					require.Greater(t, rec.pos, recs[i-1].pos)
				}
				if tc.cfg.Sequences && tc.cfg.Kind != ipc.MPSC {
					require.Equal(t, uint64(i+1), rec.seq)
				}
			}
			short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			got, err := drainBatch(t, c.Batch(short, 10))
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Empty(t, got, "held messages are not delivered twice by one consumer")

			require.NoError(t, c.Release(recs[2].pos))
			st, err = r.Stats()
			require.NoError(t, err)
			require.Equal(t, recs[2].pos, st.ConsumerPos, "Release moves the consumer position to pos")
			for i := 3; i < 10; i++ {
				require.Equal(t, msgN(i), recs[i].data, "what is still held stays valid")
			}
			require.NoError(t, c.Close())

			// The successor delivers again what was held and not released.
			c, err = r.Consumer(&ipc.ConsumerConfig{Hold: true})
			require.NoError(t, err)
			again := batchHeld(t, c, 100)
			require.Len(t, again, 7)
			for i, rec := range again {
				require.Equal(t, msgN(i+3), rec.data)
				require.Equal(t, recs[i+3].pos, rec.pos, "the same positions")
				require.Equal(t, recs[i+3].seq, rec.seq, "the same sequences")
			}
			require.NoError(t, c.Release(again[6].pos))
			st, err = r.Stats()
			require.NoError(t, err)
			require.Equal(t, st.ProducerPos, st.ConsumerPos)
			require.Zero(t, st.Duplicates, "re-delivered messages are not duplicates")
			require.NoError(t, c.Close())

			// An unheld consumer after it sees nothing more.
			c, err = r.Consumer(nil)
			require.NoError(t, err)
			defer c.Close()
			n, err := c.TryRead(10, func([]byte) {})
			require.NoError(t, err)
			require.Zero(t, n)
		})
	}
}

// Release's arguments: a position outside the held records, or inside
// one, returns fs.ErrInvalid and changes nothing; so does Release on a
// consumer that does not hold its reads. Read and TryRead refuse a held
// consumer; a drop-oldest ring refuses Hold.
func TestHoldReleaseErrors(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 4096})
	require.NoError(t, err)
	defer r.Close()
	p, err := r.Producer(nil)
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 6 {
		require.NoError(t, p.Write(ctx, msgN(i)))
	}

	c, err := r.Consumer(nil)
	require.NoError(t, err)
	require.ErrorIs(t, c.Release(0), fs.ErrInvalid, "a consumer that does not hold its reads")
	require.NoError(t, c.Close())

	c, err = r.Consumer(&ipc.ConsumerConfig{Hold: true})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Read(ctx, 1, func([]byte) {})
	require.ErrorIs(t, err, fs.ErrInvalid)
	require.Contains(t, err.Error(), "Batch")
	_, err = c.TryRead(1, func([]byte) {})
	require.ErrorIs(t, err, fs.ErrInvalid)

	recs := batchHeld(t, c, 4)
	require.Len(t, recs, 4)
	released := func() uint64 {
		st, err := r.Stats()
		require.NoError(t, err)
		return st.ConsumerPos
	}
	for _, pos := range []uint64{
		recs[3].pos + 8,  // past the read cursor (unread messages follow)
		recs[3].pos + 64, // further
		recs[1].pos - 8,  // inside a record
		1,                // not even aligned
		1 << 63,          // nowhere
	} {
		err := c.Release(pos)
		require.ErrorIs(t, err, fs.ErrInvalid, "Release(%d)", pos)
		require.Zero(t, released(), "Release(%d) changed nothing", pos)
	}
	require.NoError(t, c.Release(0), "the released position itself: nothing to do")
	require.NoError(t, c.Release(recs[1].pos))
	require.Equal(t, recs[1].pos, released())
	require.ErrorIs(t, c.Release(recs[0].pos), fs.ErrInvalid, "before the released position")
	require.NoError(t, c.Release(recs[1].pos), "the released position again")
	require.Equal(t, recs[1].pos, released())
	require.NoError(t, c.Release(recs[3].pos))
	require.Equal(t, recs[3].pos, released())
	require.NoError(t, c.Close())
	require.ErrorIs(t, c.Release(recs[3].pos), ipc.ErrClosed)

	for _, kind := range []ipc.Kind{ipc.SPSC, ipc.MPSC} {
		d, err := ipc.Create(testutil.Name(t), ipc.Config{Kind: kind, Capacity: 4096, DropOldest: true})
		require.NoError(t, err)
		_, err = d.Consumer(&ipc.ConsumerConfig{Hold: true})
		require.ErrorIs(t, err, fs.ErrInvalid, "%s drop-oldest", kind)
		require.Contains(t, err.Error(), "DropOldest")
		c, err := d.Consumer(nil)
		require.NoError(t, err, "the refusal took no role")
		require.NoError(t, c.Close())
		require.NoError(t, d.Close())
	}
}

// A ring full of held messages stops the producers; a parked producer is
// woken by the Release that makes room.
func TestHoldReleaseWakesParkedProducer(t *testing.T) {
	for _, tc := range holdRings {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Capacity = 1024
			r, err := ipc.Create(testutil.Name(t), cfg)
			require.NoError(t, err)
			defer r.Close()
			wait := ipc.Wait{Strategy: ipc.Park, PeerTimeout: time.Minute}
			p, err := r.Producer(&ipc.ProducerConfig{Wait: wait})
			require.NoError(t, err)
			defer p.Close()
			c, err := r.Consumer(&ipc.ConsumerConfig{Hold: true, Wait: wait})
			require.NoError(t, err)
			defer c.Close()
			ctx := context.Background()
			msg := make([]byte, 100)
			for p.TryWrite(msg) == nil {
			}
			recs := batchHeld(t, c, 1000)
			require.NotEmpty(t, recs)
			for p.TryWrite(msg) == nil { // room a skipped padding may have left
			}
			before, err := r.Stats()
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- p.Write(ctx, msg) }()
			for deadline := time.Now().Add(time.Minute); ; {
				st, err := r.Stats()
				require.NoError(t, err)
				if st.ProducerParks > before.ProducerParks {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("the write returned %v on a ring full of held messages", err)
				default:
				}
				require.True(t, time.Now().Before(deadline), "the producer never parked")
				time.Sleep(time.Millisecond)
			}
			require.NoError(t, c.Release(recs[len(recs)-1].pos))
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(time.Minute):
				t.Fatal("Release did not wake the parked producer")
			}
			st, err := r.Stats()
			require.NoError(t, err)
			require.Positive(t, st.ProducerWakeups-before.ProducerWakeups, "the release woke it")
		})
	}
}

// The C program written from docs/layout.md reads a ring a held consumer
// left, correctly: from the released position, what was held and not
// released comes first, with its sequences (the held consumer stored in
// the segment only the sequences it released, so none of it is discarded
// as a duplicate), then the rest. The layout is unchanged.
func TestHoldLeavesARingCReads(t *testing.T) {
	bin := buildRingC(t)
	for _, k := range cKinds() {
		if k.dropOldest {
			continue
		}
		t.Run(k.name, func(t *testing.T) {
			cfg := k.cfg
			cfg.Capacity, cfg.MaxMessage = 1<<12, 128
			r := newRing(t, cfg)
			p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
			require.NoError(t, err)
			defer p.Close()
			c, err := r.Consumer(&ipc.ConsumerConfig{Hold: true})
			require.NoError(t, err)
			next, delivered := 0, 0
			var held []heldRecord
			first := 0 // the first message not released
			for round := 0; round < 8; round++ {
				for p.TryWrite([]byte(cMessage("g0", next))) == nil {
					next++
				}
				recs := batchHeld(t, c, 1000)
				for _, rec := range recs {
					require.Equal(t, cMessage("g0", delivered), string(rec.data))
					delivered++
				}
				held = append(held, recs...)
				// Release two thirds of what is held: the ring wraps.
				k := len(held) * 2 / 3
				if k > 0 {
					require.NoError(t, c.Release(held[k-1].pos))
					held, first = held[k:], first+k
				}
			}
			require.NoError(t, c.Close())
			require.NotEmpty(t, held, "the consumer left held messages")
			require.NoError(t, p.Write(context.Background(), []byte("FIN")))

			out, err := exec.Command(bin, "read", r.Path(), "FIN").CombinedOutput()
			require.NoError(t, err, "C consumer: %s", out)
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			var want []string
			for i := first; i < next; i++ {
				line := cMessage("g0", i)
				if cfg.Sequences {
					line = fmt.Sprintf("%d %s", i+1, line)
				}
				want = append(want, line)
			}
			fin := "FIN"
			if cfg.Sequences {
				fin = fmt.Sprintf("%d FIN", next+1)
			}
			want = append(want, fin)
			require.Equal(t, want, lines, "the C reader resumes at the released position")
			st, err := r.Stats()
			require.NoError(t, err)
			require.Zero(t, st.Depth)
			require.Zero(t, st.Duplicates)
			require.Greater(t, st.ProducerPos, 4*st.Capacity, "records wrapped")
		})
	}
}

// Held messages count in the depth pressure level: raised by the producers
// past the high level, it stays raised while the consumer holds what it
// read, and falls when a Release brings the depth to the low level.
func TestHoldPressure(t *testing.T) {
	for _, tc := range holdRings {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.HighWater, cfg.LowWater = 2048, 512
			r, err := ipc.Create(testutil.Name(t), cfg)
			require.NoError(t, err)
			defer r.Close()
			p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
			require.NoError(t, err)
			defer p.Close()
			c, err := r.Consumer(&ipc.ConsumerConfig{Hold: true})
			require.NoError(t, err)
			defer c.Close()
			pressure := func() bool {
				st, err := r.Stats()
				require.NoError(t, err)
				return st.Pressure.Depth
			}
			msg := make([]byte, 100)
			for i := 0; i < 30; i++ { // about 3.3 KiB
				require.NoError(t, p.TryWrite(msg))
			}
			require.True(t, pressure(), "the producers raised it past the high level")
			recs := batchHeld(t, c, 1000)
			require.Len(t, recs, 30)
			require.True(t, pressure(), "held messages keep the depth up")
			require.NoError(t, c.Release(recs[9].pos))
			require.True(t, pressure(), "about 2.2 KiB still held: above the low level")
			require.NoError(t, c.Release(recs[29].pos))
			require.False(t, pressure(), "the Release that empties the ring lowers it")
		})
	}
}

// The consumer's window counts held messages too: producers may fill the
// window from the released position, so a held consumer that read all the
// window's worth gets no more until it releases.
func TestHoldWindow(t *testing.T) {
	for _, tc := range holdRings {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ipc.Create(testutil.Name(t), tc.cfg)
			require.NoError(t, err)
			defer r.Close()
			p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
			require.NoError(t, err)
			defer p.Close()
			c, err := r.Consumer(&ipc.ConsumerConfig{Hold: true})
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, ops.SetWindow(r, 1024))
			msg := make([]byte, 100)
			n := 0
			for p.TryWrite(msg) == nil {
				n++
			}
			require.Less(t, n, 10, "the window bounds the producers")
			recs := batchHeld(t, c, 1000)
			require.Len(t, recs, n)
			require.ErrorIs(t, p.TryWrite(msg), ipc.ErrFull, "held messages fill the window")
			require.NoError(t, c.Release(recs[n-1].pos))
			require.NoError(t, p.TryWrite(msg), "a release makes room in the window")
		})
	}
}

// TestHoldModel drives a held consumer through random writes (two
// producers in MPSC, some resending their last message with its sequence,
// which the consumer must discard), Batch loops of random sizes that may
// break, Releases (valid, and invalid ones that must change nothing) and
// restarts (Close, then a new Consumer), against a reference: the
// messages written in ring order, a released prefix, the held ones after
// it. Every message is delivered at least once, in order, without a gap;
// after a restart exactly the held and not released ones come again.
func TestHoldModel(t *testing.T) {
	for _, tc := range holdRings {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(4) {
				holdModel(t, tc.cfg, seed)
			}
		})
	}
}

func holdModel(t *testing.T, cfg ipc.Config, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 15))
	cfg.Capacity, cfg.MaxMessage = 1024, 100
	r, err := ipc.Create(testutil.Name(t), cfg)
	require.NoError(t, err)
	defer r.Close()
	nprod := 1
	if cfg.Kind == ipc.MPSC {
		nprod = 2
	}
	var ps []*ipc.Producer
	for range nprod {
		p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
		require.NoError(t, err)
		defer p.Close()
		ps = append(ps, p)
	}
	c, err := r.Consumer(&ipc.ConsumerConfig{Hold: true})
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	ctx := context.Background()

	var (
		expected []string        // in ring order, resends left out
		released int             // expected[:released] are released
		held     []uint64        // the Pos of expected[released:released+len(held)]
		last     = map[int]int{} // producer: the index of its last message in expected
		next     int
	)
	for op := 0; op < 300; op++ {
		switch x := rng.IntN(10); {
		case x < 4: // write
			k := rng.IntN(nprod)
			if j, ok := last[k]; ok && cfg.Sequences && rng.IntN(5) == 0 {
				st, err := ps[k].Stats()
				require.NoError(t, err)
				// The last message again, with its sequence: discarded.
				if err := ps[k].WriteSeq(ctx, st.NextSeq-1, []byte(expected[j])); err != nil {
					require.ErrorIs(t, err, ipc.ErrFull)
				}
				continue
			}
			m := fmt.Sprintf("p%d message %d %s", k, next, strings.Repeat("x", rng.IntN(60)))
			if err := ps[k].TryWrite([]byte(m)); err != nil {
				require.ErrorIs(t, err, ipc.ErrFull)
				continue
			}
			next++
			last[k] = len(expected)
			expected = append(expected, m)
		case x < 7: // a Batch loop, which may break
			short, cancel := context.WithTimeout(ctx, time.Millisecond)
			max, brk := 1+rng.IntN(8), rng.IntN(10)
			i := 0
			for rec, err := range c.Batch(short, max) {
				if err != nil {
					require.ErrorIs(t, err, context.DeadlineExceeded)
					require.Equal(t, len(expected), released+len(held), "a wait ends only when nothing is left")
					break
				}
				at := released + len(held)
				require.Less(t, at, len(expected), "delivered %q beyond what was written", rec.Data)
				require.Equal(t, expected[at], string(rec.Data), "the next message in order, no gap")
				held = append(held, rec.Pos)
				if i++; i == brk {
					break
				}
			}
			cancel()
		case x < 9: // releases
			st, err := r.Stats()
			require.NoError(t, err)
			rel := st.ConsumerPos
			bad := []uint64{rel - 8, rel + 1, rel + 2*1024} // before, unaligned, past anything read
			if len(held) > 0 {
				bad = append(bad, held[0]-8) // inside the first held message
			}
			for _, pos := range bad {
				require.ErrorIs(t, c.Release(pos), fs.ErrInvalid, "Release(%d), released %d", pos, rel)
			}
			after, err := r.Stats()
			require.NoError(t, err)
			require.Equal(t, rel, after.ConsumerPos, "bad releases change nothing")
			if len(held) == 0 {
				continue
			}
			j := 1 + rng.IntN(len(held))
			require.NoError(t, c.Release(held[j-1]))
			released += j
			held = held[j:]
			st, err = r.Stats()
			require.NoError(t, err)
			require.GreaterOrEqual(t, st.ConsumerPos, rel)
			if len(held) > 0 {
				require.Less(t, st.ConsumerPos, held[0], "what is still held stays held")
			}
		default: // restart
			require.NoError(t, c.Close())
			c, err = r.Consumer(&ipc.ConsumerConfig{Hold: true})
			require.NoError(t, err)
			held = nil // delivered again from the released position
		}
	}
	// Drain: everything written is delivered and released.
	for released+len(held) < len(expected) {
		for rec, err := range c.Batch(ctx, 100) {
			require.NoError(t, err)
			require.Equal(t, expected[released+len(held)], string(rec.Data))
			held = append(held, rec.Pos)
		}
	}
	if len(held) > 0 {
		require.NoError(t, c.Release(held[len(held)-1]))
	}
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, st.ProducerPos, st.ConsumerPos, "seed %d: all released", seed)
	require.Greater(t, len(expected), 30, "seed %d: the model wrote too little to mean anything", seed)
}
