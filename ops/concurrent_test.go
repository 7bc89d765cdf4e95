package ops_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// TestConcurrentWithTraffic: the operator tools run in a loop while a
// producer writes and a consumer reads: every message is delivered once,
// in order, and every inspection succeeds and finds the ring healthy.
func TestConcurrentWithTraffic(t *testing.T) {
	for _, kind := range []ipc.Kind{ipc.SPSC, ipc.MPSC} {
		t.Run(string(kind), func(t *testing.T) {
			const n = 5000
			cfg := ipc.Config{Kind: kind, Capacity: 4096, Sequences: true}
			if kind == ipc.MPSC {
				cfg.Producers = 2
			}
			r := create(t, cfg)
			ro := open(t, r.Path(), ipc.WithReadOnly())
			p, err := r.Producer(nil)
			require.NoError(t, err)
			defer p.Close()
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			defer c.Close()

			done := make(chan struct{})
			var wg sync.WaitGroup
			var inspectErr error
			var problems []string
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					if _, err := ops.Peek(ro, 100); err != nil {
						inspectErr = err
						return
					}
					d, err := ops.Doctor(ro, false)
					if err != nil {
						inspectErr = err
						return
					}
					if !d.Healthy() {
						problems = d.Problems
						return
					}
					if kind == ipc.MPSC {
						if _, err := ops.Slot(ro, 0); err != nil {
							inspectErr = err
							return
						}
					}
					if err := ops.ResetHighWater(r); err != nil {
						inspectErr = err
						return
					}
					if err := ops.SetPressureLevels(r, 2048, 1024); err != nil {
						inspectErr = err
						return
					}
				}
			}()
			wg.Add(1)
			var writeErr error
			go func() {
				defer wg.Done()
				var b [8]byte
				for i := uint64(0); i < n; i++ {
					binary.LittleEndian.PutUint64(b[:], i)
					if writeErr = p.Write(ctx(t), b[:]); writeErr != nil {
						return
					}
				}
			}()
			next := uint64(0)
			for next < n {
				_, err := c.Read(ctx(t), 64, func(m []byte) {
					require.Equal(t, next, binary.LittleEndian.Uint64(m))
					next++
				})
				require.NoError(t, err)
			}
			close(done)
			wg.Wait()
			require.NoError(t, writeErr)
			require.NoError(t, inspectErr)
			require.Empty(t, problems)
		})
	}
}

// TestConcurrentClose: operator tools running in several goroutines while
// the ring is closed return nil until the Close and ipc.ErrClosed after
// it; none crashes on the unmapped segment.
func TestConcurrentClose(t *testing.T) {
	r := create(t, ipc.Config{Kind: ipc.MPSC, Capacity: 4096})
	produce(t, r, nil, "one", "two")
	calls := []func() error{
		func() error { _, err := ops.Peek(r, 10); return err },
		func() error { _, err := ops.Doctor(r, false); return err },
		func() error { _, err := ops.Slot(r, 0); return err },
		func() error { _, err := ops.Routing(r); return err },
		func() error { return ops.SetPolicy(r, ops.Park, 0) },
		func() error { return ops.ResetHighWater(r) },
	}
	var wg sync.WaitGroup
	errs := make([]error, len(calls))
	started := make(chan struct{}, len(calls))
	for i, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			for {
				if err := call(); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	for range calls {
		<-started
	}
	require.NoError(t, r.Close())
	wg.Wait()
	for i, err := range errs {
		require.ErrorIs(t, err, ipc.ErrClosed, "call %d", i)
	}
}
