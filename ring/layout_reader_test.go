package ring_test

// Tests of points docs/layout.md states about what a reader does (the
// outsider's questions of H47): each pins the Go behaviour the page now
// describes, so that the page and the code cannot drift apart silently.

import (
	"encoding/binary"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// Header bits as docs/layout.md, section 3, gives them.
const (
	hdrSlotShift = 32
	hdrTypeShift = 48
	typeData     = 1
	typePending  = 3
)

// TestConsumerStartRaisesHighWater: "Line 4", high watermark: at start-up
// the last producer position the consumer loaded is the consumer position
// it resumes at, so its first load raises the word to the depth it finds
// (800 bytes written before it started: 800), for SPSC and MPSC alike.
func TestConsumerStartRaisesHighWater(t *testing.T) {
	const n, payload = 10, 72 // 80-byte records: 800 bytes
	for _, kind := range []ring.Kind{ring.SPSC, ring.MPSC} {
		t.Run(kind.String(), func(t *testing.T) {
			cfg := ring.Config{Kind: kind, Capacity: 1 << 12, MaxMessage: 256}
			if kind == ring.MPSC {
				cfg.Slots = 1
			}
			_, r := formatRing(t, cfg)
			var p *ring.Producer
			var err error
			if kind == ring.MPSC {
				p = slotProducer(t, r, 0)
			} else {
				p, err = r.NewProducer()
				require.NoError(t, err)
			}
			for range n {
				require.NoError(t, p.TryWrite(make([]byte, payload)))
			}
			hw := ring.HighWaterWord(r)
			require.Zero(t, hw.Load(), "a producer that always had room never raised it")
			_, err = r.NewConsumer()
			require.NoError(t, err)
			require.Equal(t, uint64(n*ring.RecordSize(payload)), hw.Load(), "the consumer's first load of the producer position raised it")
		})
	}
}

// TestSPSCReaderIgnoresSlot: section 3, "slot": an SPSC reader does not
// look at bits 32..47 of a header; a record whose slot is not 0 is
// delivered, by the plain ring's fast path, its one-record read and the
// general read path alike.
func TestSPSCReaderIgnoresSlot(t *testing.T) {
	for _, path := range []string{"fast", "one", "slow"} {
		t.Run(path, func(t *testing.T) {
			region, r := formatRing(t, ring.Config{Capacity: 1 << 12, MaxMessage: 256})
			p, err := r.NewProducer()
			require.NoError(t, err)
			c, err := r.NewConsumer()
			require.NoError(t, err)
			if path == "slow" {
				ring.SlowReads(c)
			}
			require.NoError(t, p.TryWrite([]byte("slot")))
			h := region[r.DataOffset():]
			binary.LittleEndian.PutUint64(h, binary.LittleEndian.Uint64(h)|0xBEEF<<hdrSlotShift)
			var got []string
			fn := func(m []byte) { got = append(got, string(m)) }
			if path == "one" {
				ok, err := c.TryRead(fn)
				require.NoError(t, err)
				require.True(t, ok)
			} else {
				n, err := c.ReadBatch(8, fn)
				require.NoError(t, err)
				require.Equal(t, 1, n)
			}
			require.Equal(t, []string{"slot"}, got)
		})
	}
}

// TestMPSCHeaderCheckOrder: "Reading", step 2: the type byte is looked at
// first. A zero word stops the read; a type-0 header with any other bit set
// (bits 56..63 included) is corruption; a pending header stops the read
// without its other bits being checked, and a bad one is found when the
// reservation is examined (Recover).
func TestMPSCHeaderCheckOrder(t *testing.T) {
	setup := func(t *testing.T) (*ring.Ring, *ring.Consumer, []byte) {
		region, r := formatRing(t, ring.Config{Kind: ring.MPSC, Capacity: 1 << 12, MaxMessage: 256, Slots: 1})
		c, err := r.NewConsumer()
		require.NoError(t, err)
		p := slotProducer(t, r, 0)
		require.NoError(t, p.TryWrite([]byte("payload")))
		return r, c, region[r.DataOffset():]
	}
	read := func(c *ring.Consumer) (int, error) { return c.ReadBatch(8, func([]byte) {}) }

	t.Run("type 0, not zero", func(t *testing.T) {
		for _, h := range []uint64{1 << 56, 7, 1 << hdrSlotShift} {
			_, c, data := setup(t)
			binary.LittleEndian.PutUint64(data, h)
			n, err := read(c)
			require.ErrorIs(t, err, ring.ErrCorrupt, "header %#x", h)
			require.Zero(t, n)
		}
	})
	t.Run("zero word", func(t *testing.T) {
		_, c, data := setup(t)
		binary.LittleEndian.PutUint64(data, 0)
		n, err := read(c)
		require.NoError(t, err)
		require.Zero(t, n)
		require.True(t, c.Blocked(), "stopped at a reservation not yet written")
	})
	t.Run("pending, reserved bits set", func(t *testing.T) {
		r, c, data := setup(t)
		setAlive(t, r, func(int) bool { return true })
		binary.LittleEndian.PutUint64(data, uint64(len("payload"))|typePending<<hdrTypeShift|1<<56)
		n, err := read(c)
		require.NoError(t, err, "a pending header stops the read unchecked")
		require.Zero(t, n)
		require.True(t, c.Blocked())
		_, err = c.Recover()
		require.ErrorIs(t, err, ring.ErrCorrupt, "examining the reservation finds it bad")
	})
	t.Run("data, reserved bits set", func(t *testing.T) {
		_, c, data := setup(t)
		binary.LittleEndian.PutUint64(data, uint64(len("payload"))|typeData<<hdrTypeShift|1<<56)
		_, err := read(c)
		require.ErrorIs(t, err, ring.ErrCorrupt)
	})
}

// TestMPSCStartFinishesReleaseUncounted: "Reading", start-up: a consumer
// that finds the zeroing mark ahead of the consumer position finishes the
// release (zeros, position) and counts nothing; a mark that fails the test
// (past the producer position) is ignored, not called corruption.
func TestMPSCStartFinishesReleaseUncounted(t *testing.T) {
	const payload = 24 // 32-byte records
	size := ring.RecordSize(payload)
	for _, mark := range []string{"valid", "past the producer position"} {
		t.Run(mark, func(t *testing.T) {
			region, r := formatRing(t, ring.Config{Kind: ring.MPSC, Capacity: 1 << 12, MaxMessage: 256, Slots: 1})
			p := slotProducer(t, r, 0)
			for seq := range uint64(3) {
				msg := make([]byte, payload)
				binary.LittleEndian.PutUint64(msg, seq)
				require.NoError(t, p.TryWrite(msg))
			}
			z := size // the predecessor died releasing the first record
			if mark != "valid" {
				z = 4 * size
			}
			binary.LittleEndian.PutUint64(region[ring.OffZeroEnd:], z)
			c, err := r.NewConsumer()
			require.NoError(t, err)
			st := r.Stats()
			require.Zero(t, st.MsgsOut, "nothing counted")
			require.Zero(t, st.BytesOut, "nothing counted")
			require.Zero(t, st.Lost, "nothing counted")
			first := uint64(0)
			if mark == "valid" {
				require.Equal(t, size, st.ConsumerPos, "released up to the mark")
				require.Equal(t, make([]byte, size), region[r.DataOffset():r.DataOffset()+size], "zeroed")
				first = 1
			} else {
				require.Zero(t, st.ConsumerPos, "the mark was ignored")
			}
			var seqs []uint64
			_, err = c.ReadBatch(8, func(m []byte) { seqs = append(seqs, binary.LittleEndian.Uint64(m)) })
			require.NoError(t, err)
			var want []uint64
			for s := first; s < 3; s++ {
				want = append(want, s)
			}
			require.Equal(t, want, seqs)
		})
	}
}
