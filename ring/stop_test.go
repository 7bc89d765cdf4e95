package ring_test

import (
	"fmt"
	"testing"

	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// stopRings are the read paths Stop and Current must work on.
var stopRings = []struct {
	name string
	cfg  ring.Config
}{
	{"spsc", ring.Config{Capacity: 4096}},
	{"spsc sequences timestamps", ring.Config{Capacity: 4096, Sequences: true, Timestamps: true}},
	{"spsc header commit sequences", ring.Config{Capacity: 4096, HeaderCommit: true, Sequences: true}},
	{"spsc overwrite sequences timestamps", ring.Config{Capacity: 4096, Overwrite: true, Sequences: true, Timestamps: true}},
	{"mpsc", ring.Config{Kind: ring.MPSC, Slots: 3, Capacity: 4096}},
	{"mpsc sequences timestamps", ring.Config{Kind: ring.MPSC, Slots: 3, Capacity: 4096, Sequences: true, Timestamps: true}},
	{"mpsc overwrite sequences", ring.Config{Kind: ring.MPSC, Slots: 3, Capacity: 4096, Overwrite: true, Sequences: true}},
}

// A callback that calls Stop ends the ReadBatch after its own record: that
// record is consumed with the ones before it, in one release (the consumer
// position in the region holds still while the callbacks run, outside
// overwrite rings, which release each record before delivering its copy),
// and the rest stay. Current tells each callback its record's end, sequence,
// slot and commit time.
func TestStopAndCurrent(t *testing.T) {
	for _, tc := range stopRings {
		t.Run(tc.name, func(t *testing.T) {
			_, r := formatRing(t, tc.cfg)
			var ps []*ring.Producer
			if tc.cfg.Kind == ring.MPSC {
				ps = []*ring.Producer{slotProducer(t, r, 1), slotProducer(t, r, 2)}
			} else {
				p, err := r.NewProducer()
				require.NoError(t, err)
				ps = []*ring.Producer{p}
			}
			c, err := r.NewConsumer()
			require.NoError(t, err)
			write := func(p *ring.Producer, m []byte) {
				if tc.cfg.Overwrite {
					_, err := p.TryWriteOverwrite(m)
					require.NoError(t, err)
				} else {
					require.NoError(t, p.TryWrite(m))
				}
			}
			var sizes []uint64
			for i := range 8 {
				m := []byte(fmt.Sprintf("record %d", i))
				before := r.Stats().ProducerPos
				write(ps[i%len(ps)], m)
				sizes = append(sizes, r.Stats().ProducerPos-before)
			}

			next, end := 0, r.Stats().ConsumerPos
			read := func(max, stopAt int) int {
				released := r.Stats().ConsumerPos
				n, err := c.ReadBatch(max, func(m []byte) {
					require.Equal(t, fmt.Sprintf("record %d", next), string(m))
					if !tc.cfg.Overwrite {
						require.Equal(t, released, r.Stats().ConsumerPos, "nothing is released while the callbacks run")
					}
					cur := c.Current()
					end += sizes[next]
					require.Equal(t, end, cur.End, "record %d", next)
					if tc.cfg.Kind == ring.MPSC {
						require.Equal(t, next%len(ps)+1, cur.Slot, "record %d", next)
					} else {
						require.Zero(t, cur.Slot)
					}
					if tc.cfg.Sequences {
						require.Equal(t, uint64(next/len(ps)+1), cur.Seq, "record %d", next)
					} else {
						require.Zero(t, cur.Seq)
					}
					if tc.cfg.Timestamps {
						require.NotZero(t, cur.Mono)
					} else {
						require.Zero(t, cur.Mono)
					}
					if next == stopAt {
						c.Stop()
					}
					next++
				})
				require.NoError(t, err)
				require.Equal(t, end, r.Stats().ConsumerPos, "the batch released what it delivered, and only that")
				return n
			}
			require.Equal(t, 3, read(10, 2), "Stop at the third record")
			require.Equal(t, 1, read(10, 3), "Stop at the first record of a batch")
			require.Equal(t, 2, read(2, -1), "max still bounds a batch")
			require.Equal(t, 2, read(10, -1), "the rest")
			require.Equal(t, 8, next)
			require.Equal(t, uint64(8), r.Stats().MsgsOut)
		})
	}
}
