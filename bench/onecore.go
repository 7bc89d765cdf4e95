package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/shmring/shmring/ipc"
	"golang.org/x/sys/unix"
)

// OneCoreCapacity is the data capacity of the one-core loops' rings, Go's
// and C's alike: 64 KiB, which stays in one core's L2 cache.
const OneCoreCapacity = 64 << 10

// oneCoreCase is the path's own cost per message: one goroutine, locked to
// its thread, writes batch messages of size bytes through shmring's public
// API and reads them back (OneCoreLoop), n in all after a warm-up of n/8,
// over a ring that ipc.Create makes in /dev/shm, the segment the
// cross-process cases use. The duration it returns is the thread's CPU
// time over the n messages: what the path costs, whatever else this loaded
// machine runs meanwhile (wall time counts the time the thread was
// descheduled).
func oneCoreCase(batch int) func(string, uint64, uint64) (time.Duration, error) {
	return oneCoreCaseOf(batch, OneCoreLoop)
}

// oneCoreIterCase is oneCoreCase reading each batch with a range loop over
// Consumer.Batch (OneCoreIterLoop) instead of Read's callback.
func oneCoreIterCase(batch int) func(string, uint64, uint64) (time.Duration, error) {
	return oneCoreCaseOf(batch, OneCoreIterLoop)
}

// oneCoreCaseOf is the one-core case running loop.
func oneCoreCaseOf(batch int, loop func(context.Context, *ipc.Producer, *ipc.Consumer, uint64, int, uint64) error) func(string, uint64, uint64) (time.Duration, error) {
	return func(_ string, n, size uint64) (time.Duration, error) {
		dir, err := shmDir()
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		r, err := ipc.Create(filepath.Join(dir, "ring"), ipc.Config{Capacity: OneCoreCapacity, MaxMessage: max(size, 64)})
		if err != nil {
			return 0, err
		}
		defer r.Close()
		p, err := r.Producer(nil)
		if err != nil {
			return 0, err
		}
		c, err := r.Consumer(nil)
		if err != nil {
			return 0, err
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		ctx := context.Background()
		if err := loop(ctx, p, c, n/8, batch, size); err != nil {
			return 0, err
		}
		t0 := threadCPU()
		if err := loop(ctx, p, c, n, batch, size); err != nil {
			return 0, err
		}
		d := threadCPU() - t0
		cpuUsed = d
		return d, nil
	}
}

// OneCoreLoop is the one-core loop: n messages of size bytes (rounded up
// to whole batches), each carrying its sequence number; batch 1 writes one
// with Producer.Write and reads it back with Consumer.TryRead(1, fn),
// batch > 1 writes batch with one WriteBatch and reads them back with one
// Read(ctx, batch, fn). The callback adds each message's first 8 bytes to
// a sum, which is checked at the end. The ring must hold a batch.
func OneCoreLoop(ctx context.Context, p *ipc.Producer, c *ipc.Consumer, n uint64, batch int, size uint64) error {
	if size < 8 || batch < 1 {
		return fmt.Errorf("one-core loop: messages of at least 8 bytes, batches of at least 1")
	}
	var sum, want uint64
	fn := func(m []byte) { sum += binary.LittleEndian.Uint64(m) }
	if batch == 1 {
		msg := make([]byte, size)
		for i := range n {
			binary.LittleEndian.PutUint64(msg, i)
			want += i
			if err := p.Write(ctx, msg); err != nil {
				return err
			}
			if k, err := c.TryRead(1, fn); k != 1 || err != nil {
				return fmt.Errorf("one-core loop: read %d messages (%v), want 1", k, err)
			}
		}
	} else {
		msgs := make([][]byte, batch)
		for j := range msgs {
			msgs[j] = make([]byte, size)
		}
		for i := uint64(0); i < n; i += uint64(batch) {
			for j, m := range msgs {
				binary.LittleEndian.PutUint64(m, i+uint64(j))
				want += i + uint64(j)
			}
			if k, err := p.WriteBatch(ctx, msgs); k != batch || err != nil {
				return fmt.Errorf("one-core loop: wrote %d messages (%v), want %d", k, err, batch)
			}
			if k, err := c.Read(ctx, batch, fn); k != batch || err != nil {
				return fmt.Errorf("one-core loop: read %d messages (%v), want %d", k, err, batch)
			}
		}
	}
	if sum != want {
		return fmt.Errorf("one-core loop: the messages read sum to %d, want %d", sum, want)
	}
	return nil
}

// OneCoreIterLoop is OneCoreLoop's batched loop (batch > 1) read with a
// range loop over Consumer.Batch(ctx, batch): the body adds each message's
// first 8 bytes to the sum, with no callback of the caller's per message.
func OneCoreIterLoop(ctx context.Context, p *ipc.Producer, c *ipc.Consumer, n uint64, batch int, size uint64) error {
	if size < 8 || batch < 2 {
		return fmt.Errorf("one-core loop: messages of at least 8 bytes, batches of at least 2")
	}
	var sum, want uint64
	msgs := make([][]byte, batch)
	for j := range msgs {
		msgs[j] = make([]byte, size)
	}
	for i := uint64(0); i < n; i += uint64(batch) {
		for j, m := range msgs {
			binary.LittleEndian.PutUint64(m, i+uint64(j))
			want += i + uint64(j)
		}
		if k, err := p.WriteBatch(ctx, msgs); k != batch || err != nil {
			return fmt.Errorf("one-core loop: wrote %d messages (%v), want %d", k, err, batch)
		}
		k := 0
		for rec, err := range c.Batch(ctx, batch) {
			if err != nil {
				return fmt.Errorf("one-core loop: read %d messages (%v), want %d", k, err, batch)
			}
			sum += binary.LittleEndian.Uint64(rec.Data)
			k++
		}
		if k != batch {
			return fmt.Errorf("one-core loop: read %d messages, want %d", k, batch)
		}
	}
	if sum != want {
		return fmt.Errorf("one-core loop: the messages read sum to %d, want %d", sum, want)
	}
	return nil
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// cloopCase is the C peer of oneCoreCase: cring -loop, the same loop over
// a minimal C ring of variable-length records (bench/cring/cring.c,
// lring), timed the same way (the thread's CPU time).
func cloopCase(batch int) func(string, uint64, uint64) (time.Duration, error) {
	return func(_ string, n, size uint64) (time.Duration, error) {
		bin, err := cring()
		if err != nil {
			return 0, err
		}
		out, err := exec.Command(bin, "-loop", strconv.FormatUint(n, 10), strconv.Itoa(batch), strconv.FormatUint(size, 10)).Output()
		if err != nil {
			return 0, fmt.Errorf("cring -loop: %w", err)
		}
		var perMsg, wall float64
		var cpu int64
		if _, err := fmt.Sscan(string(out), &perMsg, &wall, &cpu); err != nil || perMsg <= 0 {
			return 0, fmt.Errorf("cring -loop said %q", out)
		}
		msgs := (n + uint64(batch) - 1) / uint64(batch) * uint64(batch)
		d := time.Duration(perMsg * float64(msgs))
		cpuUsed = d
		return d, nil
	}
}
