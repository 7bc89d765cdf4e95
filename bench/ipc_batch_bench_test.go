package bench_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shmring/shmring/ipc"
)

// BenchmarkIPCRead64 compares the consumer's two ways to drain a batch of
// 64 messages of 64 bytes, in one goroutine (the producer writes them with
// TryWrite first, outside the comparison's interest but in the timing):
// Read with a callback, and a range loop over Batch. Both release the
// batch with one position store; Batch adds a yield and the record's
// fields per message, and must allocate nothing.
func BenchmarkIPCRead64(b *testing.B) {
	for _, how := range []string{"read", "batch"} {
		b.Run(how, func(b *testing.B) {
			r, err := ipc.Create(filepath.Join(b.TempDir(), "ring"), ipc.Config{Capacity: 1 << 16})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = r.Close() }()
			p, err1 := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
			c, err2 := r.Consumer(nil)
			if err1 != nil || err2 != nil {
				b.Fatal(err1, err2)
			}
			ctx := context.Background()
			msg := make([]byte, 64)
			var sum int
			drain := func(m []byte) { sum += len(m) }
			b.SetBytes(64 * batch)
			b.ReportAllocs()
			for b.Loop() {
				for range batch {
					if err := p.TryWrite(msg); err != nil {
						b.Fatal(err)
					}
				}
				if how == "read" {
					if _, err := c.Read(ctx, batch, drain); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for rec, err := range c.Batch(ctx, batch) {
					if err != nil {
						b.Fatal(err)
					}
					sum += len(rec.Data)
				}
			}
			if sum != b.N*batch*64 {
				b.Fatalf("read %d bytes, want %d", sum, b.N*batch*64)
			}
		})
	}
}
