package ipc_test

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// segmentWord reads and writeSegmentWord writes the ring's 64-bit word at
// region offset off through the segment file: another process scribbling
// on the segment.
func segmentWord(t *testing.T, path string, off int64) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return binary.LittleEndian.Uint64(b[shm.HeaderSize+off:])
}

func writeSegmentWord(t *testing.T, path string, off int64, v uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	_, err = f.WriteAt(b[:], shm.HeaderSize+off)
	require.NoError(t, err)
}

// TestConsumerOpenOnDamage: opening a consumer on a ring whose producer
// position was moved ahead returns ErrCorrupt (it panicked in its deferred
// cleanup, issue 12 defect 2) and releases the consumer role: once the
// position is repaired, a consumer opens.
func TestConsumerOpenOnDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []ipc.Option
	}{
		{"spsc", nil},
		{"header-commit", []ipc.Option{ipc.WithHeaderCommit()}},
		{"mpsc", []ipc.Option{ipc.WithKind(ipc.MPSC), ipc.WithProducers(2)}},
		{"mpsc-drop-oldest", []ipc.Option{ipc.WithKind(ipc.MPSC), ipc.WithProducers(2), ipc.WithDropOldest()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ipc.Create(testutil.Name(t), append([]ipc.Option{ipc.WithCapacity(1 << 12)}, tc.opts...)...)
			require.NoError(t, err)
			defer r.Close()
			p, err := r.Producer()
			require.NoError(t, err)
			require.NoError(t, p.Write([]byte("hello")))
			require.NoError(t, p.Close())
			good := segmentWord(t, r.Path(), ring.ProducerLine)
			for _, bad := range []uint64{good + 1<<20, good + 3, good - 1<<20} {
				writeSegmentWord(t, r.Path(), ring.ProducerLine, bad)
				c, err := r.Consumer()
				require.ErrorIs(t, err, ipc.ErrCorrupt, "producer position %d", bad)
				require.Nil(t, c)
			}
			writeSegmentWord(t, r.Path(), ring.ProducerLine, good)
			c, err := r.Consumer()
			require.NoError(t, err, "the failed opens released the consumer role")
			var got string
			ok, err := c.TryRead(func(m []byte) { got = string(m) })
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, "hello", got)
			require.NoError(t, c.Close())
		})
	}
}

// TestHeaderCommitDeadProducerState: a header-commit producer that commits
// records and dies before its position store leaves the consumer, once it
// has read them, past the producer position (docs/layout.md,
// "Header-commit rings"). The segment is made as such a death leaves it:
// records written and read for real, then the producer position stored
// back to where the dead producer last stored it. Every reader accepts the
// state: a new consumer, Peek, Stats, Doctor (with and without repair); and
// a new producer resumes after the records (issue 12, defect 3).
func TestHeaderCommitDeadProducerState(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.WithCapacity(1<<12), ipc.WithMaxMessage(256), ipc.WithHeaderCommit())
	require.NoError(t, err)
	defer r.Close()
	p, err := r.Producer()
	require.NoError(t, err)
	c, err := r.Consumer()
	require.NoError(t, err)
	require.NoError(t, p.Write([]byte("first")))
	_, err = c.TryReadBatch(10, func([]byte) {})
	require.NoError(t, err)
	stored := segmentWord(t, r.Path(), ring.ProducerLine)
	msgs := make([][]byte, 20)
	for i := range msgs {
		msgs[i] = make([]byte, 150)
		msgs[i][0] = byte(i)
	}
	n, err := p.WriteBatch(msgs) // 20 x 160 bytes: 3200, under capacity-8
	require.NoError(t, err)
	require.Equal(t, len(msgs), n)
	require.NoError(t, p.Close())
	got := 0
	n, err = c.TryReadBatch(100, func(m []byte) {
		require.Equal(t, byte(got), m[0])
		got++
	})
	require.NoError(t, err)
	require.Equal(t, 20, n)
	require.NoError(t, c.Close())
	cpos := segmentWord(t, r.Path(), ring.ConsumerLine)
	writeSegmentWord(t, r.Path(), ring.ProducerLine, stored) // the batch's position store never happened
	require.Equal(t, uint64(20*160), cpos-stored)

	st, err := r.Stats()
	require.NoError(t, err)
	require.Zero(t, st.Depth)
	recs, err := r.Peek(100)
	require.NoError(t, err, "peek")
	require.Empty(t, recs)
	for _, repair := range []bool{false, true} {
		d, err := r.Doctor(repair)
		require.NoError(t, err)
		require.True(t, d.Healthy(), "doctor (repair %v): %v", repair, d.Problems)
		require.Zero(t, d.Pending)
	}
	c, err = r.Consumer()
	require.NoError(t, err, "a consumer opens")
	defer c.Close()
	p, err = r.Producer()
	require.NoError(t, err, "a producer opens")
	defer p.Close()
	require.Equal(t, cpos, segmentWord(t, r.Path(), ring.ProducerLine), "it resumed after the dead producer's records")
	require.NoError(t, p.Write([]byte("after")))
	var last string
	n, err = c.TryReadBatch(100, func(m []byte) { last = string(m) })
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, "after", last)

	// Records committed but not yet read, past the stored position: Peek
	// and Doctor show them as the consumer will read them.
	require.NoError(t, p.Write([]byte("one")))
	stored = segmentWord(t, r.Path(), ring.ProducerLine)
	n, err = p.WriteBatch([][]byte{[]byte("two"), []byte("three")})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	writeSegmentWord(t, r.Path(), ring.ProducerLine, stored)
	recs, err = r.Peek(100)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, "three", string(recs[2].Payload))
	d, err := r.Doctor(false)
	require.NoError(t, err)
	require.True(t, d.Healthy(), "%v", d.Problems)
	require.Equal(t, 3, d.Pending)
}
