//go:build race

package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// The tests in this file need the -race build's concurrency guard (package
// ipc's useGuard); without it the misuse they commit corrupts the ring.

// catch runs f and returns the message of the panic it raised, or "".
func catch(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// TestConcurrentProducerDetected: while one goroutine is inside a Producer
// call (held there, deterministically, by its overflow route), a second
// goroutine's call on the same Producer panics, naming both calls and the
// contract, and writes nothing: afterwards every message the first wrote
// is delivered and the ring is not corrupt. Before the guard, the second
// call ran into the first.
func TestConcurrentProducerDetected(t *testing.T) {
	ctx := context.Background()
	second := map[string]func(p *ipc.Producer){
		"Write":      func(p *ipc.Producer) { _ = p.Write(ctx, []byte("second")) },
		"TryWrite":   func(p *ipc.Producer) { _ = p.TryWrite([]byte("second")) },
		"WriteBatch": func(p *ipc.Producer) { _, _ = p.WriteBatch(ctx, [][]byte{[]byte("second")}) },
		"Claim":      func(p *ipc.Producer) { _, _ = p.Claim(ctx, 8) },
		"Commit":     func(p *ipc.Producer) { _ = p.Commit(8) },
		"Abort":      func(p *ipc.Producer) { _ = p.Abort() },
		"InDoubt":    func(p *ipc.Producer) { p.InDoubt() }, // was NextSeq
		"Close":      func(p *ipc.Producer) { _ = p.Close() },
	}
	for name, f := range second {
		for _, kind := range []ipc.Kind{ipc.SPSC, ipc.MPSC} {
			t.Run(fmt.Sprintf("%v/%s", kind, name), func(t *testing.T) {
				r := newRing(t, ipc.Config{Kind: kind, Capacity: 1 << 10, MaxMessage: 64})
				entered, release := make(chan struct{}), make(chan struct{})
				unblock := sync.OnceFunc(func() { close(release) })
				var held atomic.Bool
				p, err := r.Producer(&ipc.ProducerConfig{Overflow: func([]byte) error {
					if held.CompareAndSwap(false, true) { // the first call only
						close(entered)
						<-release
					}
					return nil
				}})
				require.NoError(t, err)
				defer p.Close()
				c, err := r.Consumer(nil)
				require.NoError(t, err)
				defer c.Close()
				firstDone := make(chan struct{})
				defer func() { unblock(); <-firstDone }() // on failure too: the held call returns before the closes
				var written []string
				for i := 0; ; i++ {
					m := "m" + strconv.Itoa(i)
					if p.TryWrite([]byte(m)) != nil {
						break
					}
					written = append(written, m)
				}
				first := make(chan error, 1)
				go func() { defer close(firstDone); first <- p.Write(ctx, []byte("first")) }() // full: the route runs, and waits
				<-entered
				msg := catch(func() { f(p) })
				require.Contains(t, msg, "ipc: Producer."+name+" called while Producer.Write runs in another goroutine")
				require.Contains(t, msg, "not safe for concurrent use")
				unblock()
				require.NoError(t, <-first)
				// The second call changed nothing: the ring holds exactly
				// what the first goroutine wrote, and the Producer works.
				var got []string
				_, err = c.TryRead(1<<10, func(m []byte) { got = append(got, string(m)) })
				require.NoError(t, err)
				require.Equal(t, written, got)
				if name != "Close" {
					require.NoError(t, p.Write(ctx, []byte("after")))
					n, err := c.TryRead(1, func(m []byte) { got = append(got, string(m)) })
					require.NoError(t, err)
					require.Equal(t, 1, n)
					require.Equal(t, "after", got[len(got)-1])
				}
			})
		}
	}
}

// TestConcurrentConsumerDetected: the same for a Consumer, held inside
// TryRead by its callback. (TryRead and Read each stand for the old one-
// message and batch calls, now one method each; Batch is new.)
func TestConcurrentConsumerDetected(t *testing.T) {
	fn := func([]byte) {}
	ctx := context.Background()
	second := map[string]func(c *ipc.Consumer){
		"TryRead/1": func(c *ipc.Consumer) { _, _ = c.TryRead(1, fn) },
		"TryRead/8": func(c *ipc.Consumer) { _, _ = c.TryRead(8, fn) },
		"Read/1":    func(c *ipc.Consumer) { _, _ = c.Read(ctx, 1, fn) },
		"Read/8":    func(c *ipc.Consumer) { _, _ = c.Read(ctx, 8, fn) },
		"Batch":     func(c *ipc.Consumer) { _ = batchErr(c, ctx, 8) },
		"Close":     func(c *ipc.Consumer) { _ = c.Close() },
	}
	for name, f := range second {
		t.Run(name, func(t *testing.T) {
			method, _, _ := strings.Cut(name, "/")
			r := newRing(t, ipc.Config{Kind: ipc.MPSC, Capacity: 1 << 12})
			p, err := r.Producer(nil)
			require.NoError(t, err)
			defer p.Close()
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			defer c.Close()
			for i := 0; i < 10; i++ {
				require.NoError(t, p.Write(ctx, []byte("m"+strconv.Itoa(i))))
			}
			entered, release := make(chan struct{}), make(chan struct{})
			unblock := sync.OnceFunc(func() { close(release) })
			firstDone := make(chan struct{})
			defer func() { unblock(); <-firstDone }() // on failure too: the held call returns before the closes
			var got []string
			first := make(chan error, 1)
			go func() {
				defer close(firstDone)
				_, err := c.TryRead(1, func(m []byte) {
					got = append(got, string(m))
					close(entered)
					<-release
				})
				first <- err
			}()
			<-entered
			msg := catch(func() { f(c) })
			require.Contains(t, msg, "ipc: Consumer."+method+" called while Consumer.TryRead runs in another goroutine")
			unblock()
			require.NoError(t, <-first)
			_, err = c.TryRead(100, func(m []byte) { got = append(got, string(m)) })
			require.NoError(t, err)
			want := []string{}
			for i := 0; i < 10; i++ {
				want = append(want, "m"+strconv.Itoa(i))
			}
			require.Equal(t, want, got, "each message once, in order")
		})
	}
}

// TestConcurrentConsumerDuringBatchLoop: a Batch loop is a reading call
// from its first step to its end, its body included: another goroutine's
// read or Close while a body runs panics, naming both, and the loop then
// finishes its batch with each message once.
func TestConcurrentConsumerDuringBatchLoop(t *testing.T) {
	fn := func([]byte) {}
	ctx := context.Background()
	second := map[string]func(c *ipc.Consumer){
		"TryRead": func(c *ipc.Consumer) { _, _ = c.TryRead(8, fn) },
		"Read":    func(c *ipc.Consumer) { _, _ = c.Read(ctx, 8, fn) },
		"Batch":   func(c *ipc.Consumer) { _ = batchErr(c, ctx, 8) },
		"Close":   func(c *ipc.Consumer) { _ = c.Close() },
	}
	for method, f := range second {
		t.Run(method, func(t *testing.T) {
			r := newRing(t, ipc.Config{Capacity: 1 << 12})
			p, err := r.Producer(nil)
			require.NoError(t, err)
			defer p.Close()
			c, err := r.Consumer(nil)
			require.NoError(t, err)
			defer c.Close()
			for i := 0; i < 10; i++ {
				require.NoError(t, p.Write(ctx, []byte("m"+strconv.Itoa(i))))
			}
			entered, release := make(chan struct{}), make(chan struct{})
			unblock := sync.OnceFunc(func() { close(release) })
			firstDone := make(chan struct{})
			defer func() { unblock(); <-firstDone }()
			var got []string
			first := make(chan error, 1)
			go func() {
				defer close(firstDone)
				var ferr error
				for rec, err := range c.Batch(ctx, 4) {
					if err != nil {
						ferr = err
						break
					}
					got = append(got, string(rec.Data))
					if len(got) == 2 {
						close(entered)
						<-release
					}
				}
				first <- ferr
			}()
			<-entered
			msg := catch(func() { f(c) })
			require.Contains(t, msg, "ipc: Consumer."+method+" called while Consumer.Batch runs in another goroutine")
			unblock()
			require.NoError(t, <-first)
			_, err = c.TryRead(100, func(m []byte) { got = append(got, string(m)) })
			require.NoError(t, err)
			want := []string{}
			for i := 0; i < 10; i++ {
				want = append(want, "m"+strconv.Itoa(i))
			}
			require.Equal(t, want, got, "each message once, in order")
		})
	}
}

// TestTwoGoroutinesOneProducer: the misuse of defect 7 as a user commits
// it, two goroutines writing through one SPSC Producer as fast as they can.
// In a -race build the overlapping calls panic before they write, so
// whatever interleaving the scheduler picks, every message whose Write
// returned nil is delivered once and whole, and the ring is never
// ErrCorrupt. Before the guard: lost messages, then ErrCorrupt.
func TestTwoGoroutinesOneProducer(t *testing.T) {
	for _, headerCommit := range []bool{false, true} {
		r := newRing(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 64, HeaderCommit: headerCommit})
		p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
		require.NoError(t, err)
		c, err := r.Consumer(nil)
		require.NoError(t, err)
		const per = 2000
		var mu sync.Mutex
		ok := map[string]bool{}
		panics := 0
		var wg sync.WaitGroup
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					m := fmt.Sprintf("g%d-%d", g, i)
					var err error
					if msg := catch(func() { err = p.Write(context.Background(), []byte(m)) }); msg != "" {
						if !strings.Contains(msg, "not safe for concurrent use") {
							t.Errorf("unexpected panic: %s", msg)
							return
						}
						mu.Lock()
						panics++
						mu.Unlock()
						continue
					}
					if err == nil {
						mu.Lock()
						ok[m] = true
						mu.Unlock()
					} else if !errors.Is(err, ipc.ErrFull) {
						t.Errorf("write: %v", err)
						return
					}
				}
			}()
		}
		// Read meanwhile, so the writes go on; the reader is this goroutine.
		seen := map[string]int{}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		read := func() int {
			n, err := c.TryRead(64, func(m []byte) {
				s := string(m)
				if !strings.HasPrefix(s, "g") {
					t.Errorf("torn message %q", s)
				}
				seen[s]++
			})
			require.NoError(t, err, "the ring must not be corrupt")
			return n
		}
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			read()
		}
		for read() > 0 {
		}
		for m := range ok {
			require.Equal(t, 1, seen[m], "message %s written once, delivered once", m)
		}
		require.Len(t, seen, len(ok), "nothing delivered that no Write returned nil for")
		t.Logf("%d messages written, %d overlapping calls refused", len(ok), panics)
		require.NoError(t, c.Close())
		require.NoError(t, p.Close())
	}
}

// TestRingCloseDuringCall: Ring.Close while another goroutine is in the
// middle of a Consumer call that does not wait (TryRead, held in its
// callback) panics in -race builds, naming the call, and changes nothing:
// once the call has returned, the ring works and closes normally. Without
// -race builds, Close would unmap the segment under the call.
func TestRingCloseDuringCall(t *testing.T) {
	ctx := context.Background()
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1 << 12})
	require.NoError(t, err)
	defer func() { _ = r.Close() }()
	p, err := r.Producer(nil)
	require.NoError(t, err)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	require.NoError(t, p.Write(ctx, []byte("one")))
	require.NoError(t, p.Write(ctx, []byte("two")))
	entered, release := make(chan struct{}), make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock() // on failure too: the held call must return before the ring closes
	first := make(chan error, 1)
	go func() {
		_, err := c.TryRead(1, func([]byte) { close(entered); <-release })
		first <- err
	}()
	<-entered
	msg := catch(func() { _ = r.Close() })
	unblock()
	require.NoError(t, <-first)
	require.Contains(t, msg, "Ring.Close called while Consumer.TryRead runs in another goroutine")
	var got []string
	_, err = c.TryRead(8, func(m []byte) { got = append(got, string(m)) })
	require.NoError(t, err, "the ring is still open")
	require.Equal(t, []string{"two"}, got)
	require.NoError(t, r.Close())
	_, err = p.Stats()
	require.ErrorIs(t, err, ipc.ErrClosed)
}
