package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/shmring/shmring/ipc"
)

// runGuard is what In and Out share about their Run and their failures:
// one Run at a time and none after Close, a flag that Run's context sets
// when it is done, the state Stats reports, and the failures counted with
// the last one kept. Both embed it.
type runGuard struct {
	running  atomic.Bool
	stopping atomic.Bool // Run's context is done: waits end
	closed   atomic.Bool
	state    atomic.Value // string: what Run is doing ("" until it starts: idle)
	errors   atomic.Uint64

	mu      sync.Mutex
	lastErr string
}

// beginRun starts a Run: it fails after Close or while another Run runs;
// otherwise end, which the caller defers, marks the state stopped and lets
// the next Run in.
func (g *runGuard) beginRun(ctx context.Context) (end func(), err error) {
	if g.closed.Load() {
		return nil, fmt.Errorf("bridge: Run after Close: %w", ipc.ErrClosed)
	}
	if !g.running.CompareAndSwap(false, true) {
		return nil, errors.New("bridge: Run is running already: one Run at a time")
	}
	g.stopping.Store(false)
	stop := context.AfterFunc(ctx, func() { g.stopping.Store(true) })
	return func() {
		g.setState("stopped")
		stop()
		g.running.Store(false)
	}, nil
}

// beginClose reports whether Close should go on: an error while Run runs,
// false if Close ran already (Close is idempotent).
func (g *runGuard) beginClose() (bool, error) {
	if g.running.Load() {
		return false, errors.New("bridge: Close while Run is running: cancel Run's context and wait for it to return first")
	}
	return g.closed.CompareAndSwap(false, true), nil
}

func (g *runGuard) setState(s string) { g.state.Store(s) }

// stateName is the state for Stats: "idle" until Run first sets one.
func (g *runGuard) stateName() string {
	if v, ok := g.state.Load().(string); ok {
		return v
	}
	return "idle"
}

// fail counts a failure (each is retried) and keeps it as the last error.
func (g *runGuard) fail(err error) {
	g.errors.Add(1)
	msg := err.Error()
	if errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrDisconnected) {
		// nats.go's words for a request while the connection is down (an
		// out-bridge has no reconnect buffer: "outbound buffer limit
		// exceeded") do not say what happened.
		msg = "not connected to NATS (reconnecting): retried once the connection is back (" + msg + ")"
	}
	g.mu.Lock()
	g.lastErr = msg
	g.mu.Unlock()
}

// lastError is the last failure's text ("" none).
func (g *runGuard) lastError() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}
