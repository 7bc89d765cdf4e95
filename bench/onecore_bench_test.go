package bench_test

import (
	"context"
	"github.com/shmring/shmring/internal/testutil"
	"testing"

	"github.com/shmring/shmring/bench"
	"github.com/shmring/shmring/ipc"
)

// BenchmarkOneCore is shmbench's one-core cases as a Go benchmark, for
// profiles and assembly (docs/benchmarks.md, "The one-core loop"): one
// goroutine runs bench.OneCoreLoop, Write then TryRead(1) ("write"), or
// WriteBatch(64) then Read(64) ("batch64") or a range loop over
// Batch(64) ("iter64"), over an ipc ring of
// bench.OneCoreCapacity in /dev/shm, as shmbench; ns/op is the cost per message.
func BenchmarkOneCore(b *testing.B) {
	for _, tc := range []struct {
		name  string
		batch int
		loop  func(context.Context, *ipc.Producer, *ipc.Consumer, uint64, int, uint64) error
	}{{"write", 1, bench.OneCoreLoop}, {"batch64", 64, bench.OneCoreLoop}, {"iter64", 64, bench.OneCoreIterLoop}} {
		b.Run(tc.name, func(b *testing.B) {
			r, err := ipc.Create(testutil.Name(b), ipc.Config{Capacity: bench.OneCoreCapacity})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = r.Close() }()
			p, err1 := r.Producer(nil)
			c, err2 := r.Consumer(nil)
			if err1 != nil || err2 != nil {
				b.Fatal(err1, err2)
			}
			ctx := context.Background()
			b.SetBytes(64)
			b.ReportAllocs()
			b.ResetTimer()
			if err := tc.loop(ctx, p, c, uint64(b.N), tc.batch, 64); err != nil {
				b.Fatal(err)
			}
		})
	}
}
