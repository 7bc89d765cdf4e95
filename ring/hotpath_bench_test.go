package ring_test

import (
	"testing"

	"github.com/shmring/shmring/ring"
)

// BenchmarkHotPath measures the single-goroutine write and read paths of
// each ring kind (write 64 records, read them back in one batch), so that
// a change to how the paths are laid out can be compared before and after:
//
//	go test -run '^$' -bench HotPath -count 5 ./ring
func BenchmarkHotPath(b *testing.B) {
	msg := make([]byte, 64)
	drain := func([]byte) {}
	run := func(b *testing.B, p *ring.Producer, c *ring.Consumer) {
		b.ReportAllocs()
		b.SetBytes(64 * 64)
		for b.Loop() {
			for range 64 {
				_ = p.TryWrite(msg)
			}
			_, _ = c.ReadBatch(64, drain)
		}
	}
	b.Run("spsc", func(b *testing.B) {
		p, c, _ := newRing(b, 1<<16, 1<<10)
		run(b, p, c)
	})
	b.Run("spsc-header-commit", func(b *testing.B) {
		p, c, _ := newRing(b, 1<<16, 1<<10, headerCommit)
		run(b, p, c)
	})
	b.Run("mpsc", func(b *testing.B) {
		r, c := newMPSC(b, 1<<16, 1<<10, 4)
		run(b, slotProducer(b, r, 0), c)
	})
	b.Run("spsc-batch", func(b *testing.B) {
		p, c, _ := newRing(b, 1<<16, 1<<10)
		msgs := make([][]byte, 64)
		for i := range msgs {
			msgs[i] = msg
		}
		b.ReportAllocs()
		b.SetBytes(64 * 64)
		for b.Loop() {
			_, _ = p.WriteBatch(msgs)
			_, _ = c.ReadBatch(64, drain)
		}
	})
	b.Run("mpsc-batch", func(b *testing.B) {
		r, c := newMPSC(b, 1<<16, 1<<10, 4)
		p := slotProducer(b, r, 0)
		msgs := make([][]byte, 64)
		for i := range msgs {
			msgs[i] = msg
		}
		b.ReportAllocs()
		b.SetBytes(64 * 64)
		for b.Loop() {
			_, _ = p.WriteBatch(msgs)
			_, _ = c.ReadBatch(64, drain)
		}
	})
}
