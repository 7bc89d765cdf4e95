package ipc_test

import (
	"context"
	"errors"
	"io/fs"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/ring"
	"github.com/stretchr/testify/require"
)

// A call of the table below: the method it exercises and what it returns.
type misuseCall struct {
	method string
	call   func() error
}

// closedCalls lists a call of every exported method of the Ring, its
// Producer and its Consumer that reads or writes the segment, and of every
// function of package ops that takes the Ring, and the methods that answer
// from memory (no error to return) as nil calls that must merely not
// crash. TestClosedEveryMethod checks by reflection that the table covers
// every exported method, so a method added later must be added here (ops'
// functions cannot be listed by reflection: add a new one by hand).
func closedCalls(r *ipc.Ring, p *ipc.Producer, c *ipc.Consumer) (errs []misuseCall, noErr []misuseCall) {
	ctx := context.Background()
	fn := func([]byte) {}
	errs = []misuseCall{
		{"Producer.Write", func() error { return p.Write(ctx, []byte("x")) }},
		{"Producer.WriteSeq", func() error { return p.WriteSeq(ctx, 1<<40, []byte("x")) }},
		{"Producer.TryWrite", func() error { return p.TryWrite([]byte("x")) }},
		{"Producer.WriteBatch", func() error { _, err := p.WriteBatch(ctx, [][]byte{[]byte("x")}); return err }},
		{"Producer.Claim", func() error { _, err := p.Claim(ctx, 8); return err }},
		{"Producer.Commit", func() error { return p.Commit(1) }},
		{"Producer.Abort", p.Abort},
		{"Producer.Stats", func() error { _, err := p.Stats(); return err }},
		{"Producer.Pressure", func() error { _, err := p.Pressure(); return err }},
		{"Consumer.TryRead", func() error { _, err := c.TryRead(8, fn); return err }},
		{"Consumer.Read", func() error { _, err := c.Read(ctx, 8, fn); return err }},
		{"Consumer.Batch", func() error { return batchErr(c, ctx, 8) }},
		{"Consumer.Release", func() error { return c.Release(0) }},
	}
	if r != nil {
		errs = append(errs, []misuseCall{
			{"Ring.Stats", func() error { _, err := r.Stats(); return err }},
			{"Ring.Share", func() error { return r.Share(nil) }},
			{"Ring.Producer", func() error { _, err := r.Producer(nil); return err }},
			{"Ring.Consumer", func() error { _, err := r.Consumer(nil); return err }},
			{"ops.Peek", func() error { _, err := ops.Peek(r, 8); return err }},
			{"ops.ResetHighWater", func() error { return ops.ResetHighWater(r) }},
			{"ops.Doctor", func() error { _, err := ops.Doctor(r, false); return err }},
			{"ops.Doctor(repair)", func() error { _, err := ops.Doctor(r, true); return err }},
			{"ops.SetPressureLevels", func() error { return ops.SetPressureLevels(r, 100, 50) }},
			{"ops.SetTargetDelay", func() error { return ops.SetTargetDelay(r, 0, 0) }},
			{"ops.SetPolicy", func() error { return ops.SetPolicy(r, ops.Park, ops.Park) }},
			{"ops.SetWindow", func() error { return ops.SetWindow(r, 512) }},    // was Consumer.SetWindow
			{"ops.Slot", func() error { _, err := ops.Slot(r, 0); return err }}, // was ProducerSlot: a zero SlotStats after Close, now ErrClosed
		}...)
	}
	noErr = []misuseCall{
		{"Producer.InDoubt", func() error { p.InDoubt(); return nil }},
		{"Consumer.WatchLiveness", func() error { c.WatchLiveness(func(int, bool) {}); return nil }}, // a test hook (export_test.go)
		{"Consumer.ProducerWaitLine", func() error { c.ProducerWaitLine(); return nil }},             // a test hook (export_test.go)
		{"Consumer.IdleChecks", func() error { c.IdleChecks(); return nil }},                         // a test hook (export_test.go)
		{"Producer.Close", p.Close}, // idempotent: nil
		{"Consumer.Close", c.Close}, // idempotent: nil
	}
	if r != nil {
		noErr = append(noErr, []misuseCall{
			{"Ring.Path", func() error { r.Path(); return nil }},
			{"ops.Header", func() error { ops.Header(r); return nil }},
			{"Ring.FD", func() error { r.FD(); return nil }}, // export_test.go
			{"Ring.Close", r.Close},                          // idempotent: nil
		}...)
	}
	return errs, noErr
}

// TestClosedEveryMethod: after Ring.Close (which closes the Producer and
// Consumer made from it and unmaps the segment), and after Producer.Close
// and Consumer.Close with the Ring open, every method returns ErrClosed or,
// if it has no error to return, answers without touching the segment.
// Before the fix, Producer.Pressure, Stats and Abort (and Consumer.SetWindow,
// Ring.ProducerSlot, now ops.Slot) read the unmapped segment: SIGSEGV.
func TestClosedEveryMethod(t *testing.T) {
	kinds := map[string]ipc.Config{
		"spsc":          {Sequences: true},
		"mpsc":          {Kind: ipc.MPSC, Producers: 2, Sequences: true},
		"header-commit": {HeaderCommit: true},
		"drop-oldest":   {Kind: ipc.MPSC, Producers: 2, DropOldest: true},
	}
	for name, cfg := range kinds {
		cfg.Capacity = 1 << 12
		t.Run(name+"/ring-closed", func(t *testing.T) {
			r, err := ipc.Create(testutil.Name(t), cfg)
			require.NoError(t, err)
			p, err := r.Producer(nil)
			require.NoError(t, err)
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			require.NoError(t, p.Write(context.Background(), []byte("before")))
			_, err = p.Claim(context.Background(), 16) // an outstanding claim, abandoned by Close
			require.NoError(t, err)
			require.NoError(t, r.Close())

			errCalls, noErr := closedCalls(r, p, c)
			coverAll(t, errCalls, noErr)
			for _, k := range errCalls {
				require.ErrorIs(t, k.call(), ipc.ErrClosed, k.method)
			}
			for _, k := range noErr {
				require.NoError(t, k.call(), k.method)
			}
		})
		t.Run(name+"/endpoints-closed", func(t *testing.T) {
			r := newRing(t, cfg)
			p, err := r.Producer(nil)
			require.NoError(t, err)
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			_, err = p.Claim(context.Background(), 16)
			require.NoError(t, err)
			require.NoError(t, p.Close())
			require.NoError(t, c.Close())
			errCalls, noErr := closedCalls(nil, p, c)
			for _, k := range errCalls {
				require.ErrorIs(t, k.call(), ipc.ErrClosed, k.method)
			}
			for _, k := range noErr {
				require.NoError(t, k.call(), k.method)
			}
			// The ring itself is untouched: the abandoned claim is not a
			// message, and a new pair works.
			p, err = r.Producer(nil)
			require.NoError(t, err)
			require.NoError(t, p.Write(context.Background(), []byte("after")))
			c, err = r.Consumer(nil)
			require.NoError(t, err)
			var got []string
			_, err = c.TryRead(8, func(m []byte) { got = append(got, string(m)) })
			require.NoError(t, err)
			require.Equal(t, []string{"after"}, got)
		})
	}
}

// coverAll fails unless the calls name every exported method of Ring,
// Producer and Consumer.
func coverAll(t *testing.T, lists ...[]misuseCall) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range lists {
		for _, k := range l {
			have[k.method] = true
			if i := len(k.method) - len("(repair)"); i > 0 && k.method[i:] == "(repair)" {
				have[k.method[:i]] = true
			}
		}
	}
	var missing []string
	for name, v := range map[string]any{"Ring": (*ipc.Ring)(nil), "Producer": (*ipc.Producer)(nil), "Consumer": (*ipc.Consumer)(nil)} {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumMethod(); i++ {
			if m := name + "." + typ.Method(i).Name; !have[m] {
				missing = append(missing, m)
			}
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "methods not covered by the after-Close table (add them to closedCalls)")
}

// TestNilArguments: a nil callback or context is refused with ErrInvalid
// (fs.ErrInvalid), before anything is read: the message is still there
// afterwards. Before the fix, each of these panicked (a nil function or
// interface called). Every call that takes a context is covered: Write
// (the old WriteContext), WriteSeq, WriteBatch, Claim, Read, Batch.
func TestNilArguments(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 12, Sequences: true})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	require.NoError(t, p.Write(ctx, []byte("kept")))
	var nilCtx context.Context
	fn := func([]byte) {}
	for _, k := range []misuseCall{
		{"TryRead", func() error { _, err := c.TryRead(1, nil); return err }},
		{"TryRead batch", func() error { _, err := c.TryRead(8, nil); return err }},
		{"Read", func() error { _, err := c.Read(ctx, 1, nil); return err }},
		{"Read batch", func() error { _, err := c.Read(ctx, 8, nil); return err }},
		{"Read nil ctx", func() error { _, err := c.Read(nilCtx, 1, fn); return err }},
		{"Read batch nil ctx", func() error { _, err := c.Read(nilCtx, 8, fn); return err }},
		{"Batch nil ctx", func() error { return batchErr(c, nilCtx, 8) }},
		{"Write nil ctx", func() error { return p.Write(nilCtx, []byte("x")) }},
		{"WriteSeq nil ctx", func() error { return p.WriteSeq(nilCtx, 1<<40, []byte("x")) }},
		{"WriteBatch nil ctx", func() error { _, err := p.WriteBatch(nilCtx, [][]byte{[]byte("x")}); return err }},
		{"Claim nil ctx", func() error { _, err := p.Claim(nilCtx, 8); return err }},
	} {
		err := k.call()
		require.ErrorIs(t, err, fs.ErrInvalid, k.method)
		require.Contains(t, err.Error(), "nil", k.method)
	}
	var got []string
	_, err = c.Read(ctx, 8, func(m []byte) { got = append(got, string(m)) })
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, got, "nothing was consumed or written by the refused calls")
}

// TestRingNilCallbacks: package ring refuses nil callbacks too.
func TestRingNilCallbacks(t *testing.T) {
	cfg := ring.Config{Capacity: 1 << 12, Kind: ring.MPSC, Slots: 1}
	size, err := ring.Size(cfg)
	require.NoError(t, err)
	region := make([]byte, size)
	require.NoError(t, ring.Format(region, cfg))
	rr, err := ring.Attach(region)
	require.NoError(t, err)
	c, err := rr.NewConsumer()
	require.NoError(t, err)
	_, err = c.ReadBatch(8, nil)
	require.ErrorIs(t, err, ring.ErrInvalid)
	_, err = c.TryRead(nil)
	require.ErrorIs(t, err, ring.ErrInvalid)
	_, err = c.Recover() // attached without a Liveness
	require.ErrorIs(t, err, ring.ErrInvalid)
}

// TestCloseWakesWaiters: Ring.Close while another goroutine waits in a
// Write (full ring) or a Read (empty ring), under each way of waiting: the
// waiting call returns ErrClosed and Close returns once it has, before it
// unmaps the segment. The waiting goroutine then closes its endpoint, as a
// deferred Close would, concurrently with Ring.Close's own. Before the fix,
// the waiter woke (or timed out its sleep) into an unmapped segment:
// SIGSEGV. The ways of waiting are the four Strategies of the endpoints'
// Wait, and the two wait modes that now exist only as overrides in the
// segment (ops.SetPolicy, ringctl policy): backoff, and block (which waits
// as park, bounded by the caller's context).
func TestCloseWakesWaiters(t *testing.T) {
	const deadline = 2 * time.Minute // only a stuck test meets it
	type waiting struct {
		name     string
		strategy ipc.Strategy
		override ops.Policy // 0: none
	}
	for _, w := range []waiting{
		{"park", ipc.Park, 0}, {"hybrid", ipc.Hybrid, 0}, {"spin", ipc.Spin, 0}, {"yield", ipc.Yield, 0},
		{"override-backoff", ipc.Hybrid, ops.Backoff}, {"override-block", ipc.Hybrid, ops.Block},
	} {
		for _, call := range []string{"Write", "WriteBatch", "Claim", "Read", "ReadBatch", "Batch"} {
			t.Run(w.name+"/"+call, func(t *testing.T) {
				r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1 << 10, MaxMessage: 64})
				require.NoError(t, err)
				closed := false
				defer func() {
					if !closed {
						_ = r.Close()
					}
				}()
				if w.override != 0 {
					require.NoError(t, ops.SetPolicy(r, w.override, w.override))
				}
				// The wait hook tells the test that the call is waiting: it
				// is consulted at the wait's checks, however it waits.
				hooked := make(chan struct{})
				var once sync.Once
				hook := func(ipc.WaitInfo) error {
					once.Do(func() { close(hooked) })
					return nil
				}
				wait := ipc.Wait{Strategy: w.strategy, PeerTimeout: deadline, Hook: hook}
				p, err := r.Producer(&ipc.ProducerConfig{Wait: wait})
				require.NoError(t, err)
				c, err := r.Consumer(&ipc.ConsumerConfig{Wait: wait})
				require.NoError(t, err)
				reading := call == "Read" || call == "ReadBatch" || call == "Batch"
				if !reading {
					for p.TryWrite(make([]byte, 64)) == nil {
					}
				}
				result := make(chan error, 1)
				go func() {
					var err error
					ctx, cancel := context.WithTimeout(context.Background(), deadline)
					defer cancel()
					switch call {
					case "Write":
						err = p.Write(ctx, make([]byte, 64))
					case "WriteBatch":
						_, err = p.WriteBatch(ctx, [][]byte{make([]byte, 64), make([]byte, 64)})
					case "Claim":
						_, err = p.Claim(ctx, 64)
					case "Read":
						_, err = c.Read(ctx, 1, func([]byte) {})
					case "ReadBatch":
						_, err = c.Read(ctx, 8, func([]byte) {})
					case "Batch":
						err = batchErr(c, ctx, 8)
					}
					// What a deferred Close in the waiting goroutine does,
					// possibly while Ring.Close is closing it too.
					if reading {
						_ = c.Close()
					} else {
						_ = p.Close()
					}
					result <- err
				}()
				select {
				case <-hooked:
				case err := <-result:
					t.Fatalf("the call returned %v instead of waiting", err)
				case <-time.After(deadline):
					t.Fatal("the call never reached its wait")
				}
				require.NoError(t, r.Close())
				closed = true
				select {
				case err := <-result:
					require.ErrorIs(t, err, ipc.ErrClosed)
				case <-time.After(deadline):
					t.Fatal("the waiting call never returned after Ring.Close")
				}
			})
		}
	}
}

// waitFor polls cond until it holds, failing the test only after d (a
// bound that only a stuck test meets; never a timing assertion).
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("condition not met within %v", d)
		}
	}
}

// TestCloseConcurrentWithRingMethods: Ring methods called from other
// goroutines (and ops' functions on it) while the Ring closes return their
// result or ErrClosed, never crash. Before the fix, Stats (and the other
// inspection methods, now in ops) could read the segment while Close
// unmapped it.
func TestCloseConcurrentWithRingMethods(t *testing.T) {
	for range 20 {
		r, err := ipc.Create(testutil.Name(t), ipc.Config{Kind: ipc.MPSC, Producers: 2, Capacity: 1 << 12})
		require.NoError(t, err)
		p, err := r.Producer(nil)
		require.NoError(t, err)
		require.NoError(t, p.Write(context.Background(), []byte("x")))
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 64)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 50; i++ {
					for _, f := range []func() error{
						func() error { _, err := r.Stats(); return err },
						func() error { _, err := ops.Peek(r, 8); return err },
						func() error { _, err := ops.Doctor(r, false); return err },
						func() error { _, err := p.Stats(); return err },
						func() error { _, err := p.Pressure(); return err },
						func() error { _, err := ops.Slot(r, 0); return err },
					} {
						if err := f(); err != nil && !errors.Is(err, ipc.ErrClosed) {
							errs <- err
							return
						}
					}
				}
			}()
		}
		close(start)
		require.NoError(t, r.Close())
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
}

// TestCommitWithoutClaim: Commit with no claim outstanding (none made, or
// the one made already committed or aborted), or of more than was claimed,
// is a misuse matching fs.ErrInvalid that says what to do; nothing is
// written.
func TestCommitWithoutClaim(t *testing.T) {
	for _, kind := range []ipc.Kind{ipc.SPSC, ipc.MPSC} {
		t.Run(string(kind), func(t *testing.T) { testCommitWithoutClaim(t, kind) })
	}
}

func testCommitWithoutClaim(t *testing.T, kind ipc.Kind) {
	r := newRing(t, ipc.Config{Kind: kind, Capacity: 1 << 12})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	ctx := context.Background()
	check := func(err error, what string) {
		require.ErrorIs(t, err, fs.ErrInvalid, "%s %s", kind, what)
		require.Contains(t, err.Error(), "call Claim first", "%s %s", kind, what)
	}
	check(p.Commit(0), "no claim")
	_, err = p.Claim(ctx, 8)
	require.NoError(t, err)
	require.NoError(t, p.Commit(8))
	check(p.Commit(8), "committed twice")
	_, err = p.Claim(ctx, 8)
	require.NoError(t, err)
	require.NoError(t, p.Abort())
	check(p.Commit(8), "commit after abort")
	_, err = p.Claim(ctx, 8)
	require.NoError(t, err)
	err = p.Commit(9)
	require.ErrorIs(t, err, fs.ErrInvalid, "%s: more than claimed", kind)
	require.NoError(t, p.Abort())
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.MsgsIn, "%s: only the committed claim was written", kind)
}
