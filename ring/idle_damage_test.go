package ring_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// Region offsets of the words these tests overwrite (docs/layout.md).
const (
	consumerPosOff = 256 // the consumer position
	delivSeqOff    = 560 // SPSC: the last sequence delivered
	slotDelivSeq   = 104 // MPSC: a slot's last sequence delivered
)

// TestCheckPosition: the consumer's idle check (package ipc calls it when
// a sleep runs out) fails it with ErrCorrupt when the consumer position
// word is not what it last stored, and only then: not for a consumer that
// holds its reads (the word is its release point, behind its cursor), nor
// in an overwrite ring, whose producers move the word.
func TestCheckPosition(t *testing.T) {
	t.Run("overwritten", func(t *testing.T) {
		p, c, region := newRing(t, 1<<10, 64)
		require.NoError(t, p.TryWrite([]byte("a")))
		require.Equal(t, []string{"a"}, drain(t, c))
		require.NoError(t, c.CheckPosition())
		binary.LittleEndian.PutUint64(region[consumerPosOff:], 1<<64-1)
		err := c.CheckPosition()
		require.ErrorIs(t, err, ring.ErrCorrupt)
		require.ErrorContains(t, err, fmt.Sprintf("consumer position word at region offset 256 holds %d, but this consumer last stored %d", uint64(1<<64-1), c.Position()))
		require.ErrorContains(t, err, "ringctl doctor")
		require.NoError(t, p.TryWrite([]byte("b")))
		_, err = c.ReadBatch(10, func([]byte) {})
		require.ErrorIs(t, err, ring.ErrCorrupt, "the consumer stays failed")
	})
	t.Run("held", func(t *testing.T) {
		p, c, _ := newRing(t, 1<<10, 64)
		require.NoError(t, c.Hold())
		for _, m := range []string{"a", "b", "c"} {
			require.NoError(t, p.TryWrite([]byte(m)))
		}
		n, err := c.ReadBatch(10, func([]byte) {})
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.NotEqual(t, c.Position(), c.Cursor(), "held: the word stays at the release point")
		require.NoError(t, c.CheckPosition())
		require.NoError(t, c.Release(c.Cursor()))
		require.NoError(t, c.CheckPosition())
	})
	t.Run("overwrite", func(t *testing.T) {
		p, c, region := newRing(t, 1<<10, 64, func(cfg *ring.Config) { cfg.Overwrite = true })
		msg := make([]byte, 56)
		dropped := 0
		for range 40 { // 64-byte records: 16 fit; the rest reclaim
			d, err := p.TryWriteOverwrite(msg)
			require.NoError(t, err)
			dropped += d
		}
		require.Positive(t, dropped)
		require.NotEqual(t, c.Position(), binary.LittleEndian.Uint64(region[consumerPosOff:]), "producers moved the word")
		require.NoError(t, c.CheckPosition())
	})
}

// TestDeliveredPastBegun: a last-sequence-delivered word past the last
// sequence its producer began (2^64-1 written by another process) would
// make the consumer discard every record as a duplicate, silently; the
// duplicate path finds it and returns ErrCorrupt naming the word, leaving
// the record unread (the consumer's position does not move) and counting
// no duplicate. SPSC (560) and an MPSC slot (+104) alike.
func TestDeliveredPastBegun(t *testing.T) {
	for _, kind := range []ring.Kind{ring.SPSC, ring.MPSC} {
		t.Run(kind.String(), func(t *testing.T) {
			r, region, newP := seqRing(t, kind, false)
			p := newP(1)
			off := uint64(delivSeqOff)
			if kind == ring.MPSC {
				off = r.SlotOffset(1) + slotDelivSeq
			}
			c, err := r.NewConsumer()
			require.NoError(t, err)
			require.NoError(t, p.TryWrite([]byte("m1")))
			require.Equal(t, []string{"m1"}, drain(t, c))
			binary.LittleEndian.PutUint64(region[off:], 1<<64-1)
			require.NoError(t, p.TryWrite([]byte("m2")))
			pos := c.Position()
			n, err := c.ReadBatch(10, func([]byte) {})
			require.ErrorIs(t, err, ring.ErrCorrupt)
			require.Zero(t, n)
			require.ErrorContains(t, err, fmt.Sprintf("last sequence delivered at region offset %d holds %d, past the last sequence begun 2", off, uint64(1<<64-1)))
			require.Equal(t, pos, c.Position(), "the record stays in the ring")
			require.Zero(t, r.Stats().Duplicates, "not counted as a duplicate")
			_, err = c.TryRead(func([]byte) {})
			require.ErrorIs(t, err, ring.ErrCorrupt, "the consumer stays failed")
		})
	}
}

// TestLegitimateDuplicatesNotCorrupt: a producer resending the messages
// InDoubt names (and an older one) has them discarded as duplicates,
// without error: the delivered word is at or below begun.
func TestLegitimateDuplicatesNotCorrupt(t *testing.T) {
	for _, kind := range []ring.Kind{ring.SPSC, ring.MPSC} {
		t.Run(kind.String(), func(t *testing.T) {
			r, _, open := seqRing(t, kind, false)
			newP := func() *ring.Producer { return open(0) }
			p := newP()
			for i := 1; i <= 4; i++ {
				require.NoError(t, p.TryWrite([]byte(fmt.Sprint("m", i))))
			}
			c, err := r.NewConsumer()
			require.NoError(t, err)
			require.Len(t, drain(t, c), 4)
			p = newP() // a restart: resend what is in doubt, and more
			from, to := p.InDoubt()
			for s := min(from, 3); s < to; s++ {
				require.NoError(t, p.TryWriteSeq(s, []byte("again")))
			}
			require.NoError(t, p.TryWriteSeq(3, []byte("m3 again")))
			require.NoError(t, p.TryWrite([]byte("m5")))
			n, err := c.ReadBatch(100, func([]byte) {})
			require.NoError(t, err)
			require.Equal(t, 1, n, "only m5")
			require.Positive(t, r.Stats().Duplicates)
		})
	}
}

// seqRing formats a 4 KiB ring of kind with sequences (and timestamps if
// asked) over a byte slice and returns it, its region, and a function that
// opens a producer: the SPSC one, or MPSC slot slot.
func seqRing(t *testing.T, kind ring.Kind, timestamps bool) (*ring.Ring, []byte, func(slot int) *ring.Producer) {
	t.Helper()
	cfg := ring.Config{Kind: kind, Capacity: 1 << 12, MaxMessage: 100, Sequences: true, Timestamps: timestamps}
	size, _ := ring.Size(cfg)
	region := make([]byte, size)
	require.NoError(t, ring.Format(region, cfg))
	r, err := ring.Attach(region)
	require.NoError(t, err)
	return r, region, func(slot int) *ring.Producer {
		t.Helper()
		var p *ring.Producer
		var err error
		if kind == ring.SPSC {
			p, err = r.NewProducer()
		} else {
			p, err = r.NewSlotProducer(slot)
		}
		require.NoError(t, err)
		return p
	}
}
