package bridge

import (
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
)

// The bridge block: a bridge publishes its state in its ring's segment
// (docs/layout.md, "Lines 13 and 14": line 13 for an out-bridge, 14 for an
// in-bridge), so that any process reads it: ringctl bridge status and
// stat (ops.Bridges) and the metrics collector. A goroutine stores a
// sample every statusEvery; nothing is done per message.

// Directions of a bridge block.
const (
	statusOut = int(ring.BridgeOut)
	statusIn  = int(ring.BridgeIn)
)

// statusEvery is how often a running bridge stores its sample (and so its
// heartbeat); ops.BridgeStaleAfter is far above it.
const statusEvery = 100 * time.Millisecond

// statusSample is what a bridge publishes in its ring's bridge block.
type statusSample struct {
	State      uint64 // a state code: stateCode of the Stats' State
	Connection uint64 // a connection code: connCode of the connection's status
	Window     uint64 // out: OutConfig.Window; in: InConfig.Batch
	InFlight   uint64 // out: publishes awaiting acknowledgement; in: 1 while paused
	Moved      uint64 // out: published; in: written into the ring
	Acked      uint64
	Errors     uint64
	Reconnects uint64
	Duplicates uint64
	Mark       uint64 // out: messages released; in: the last stream sequence in the ring
}

// stateCode is the block's code (ring.BridgeIdle, ...) of a state as
// InStats and OutStats name it; 0 for a name it does not know.
func stateCode(s string) uint64 {
	switch s {
	case "idle":
		return ring.BridgeIdle
	case "reading":
		return ring.BridgeReading
	case "full":
		return ring.BridgeFull
	case "retrying":
		return ring.BridgeRetrying
	case "stopped":
		return ring.BridgeStopped
	case "resyncing":
		return ring.BridgeResyncing
	case "fetching":
		return ring.BridgeFetching
	case "paused":
		return ring.BridgePaused
	}
	return 0
}

// connCode is the block's code of a NATS connection's status.
func connCode(s nats.Status) uint64 {
	switch s {
	case nats.CONNECTED:
		return ring.BridgeConnConnected
	case nats.CONNECTING:
		return ring.BridgeConnConnecting
	case nats.RECONNECTING:
		return ring.BridgeConnReconnecting
	case nats.DISCONNECTED:
		return ring.BridgeConnDisconnected
	case nats.CLOSED:
		return ring.BridgeConnClosed
	case nats.DRAINING_SUBS, nats.DRAINING_PUBS:
		return ring.BridgeConnDraining
	}
	return ring.BridgeConnUnknown
}

// startStatus publishes sample() in r's bridge block for direction dir
// (statusOut or statusIn): once now, then every statusEvery from a
// goroutine of its own, until stop is called. stop stores a last sample
// with the state stopped, ends the goroutine and waits for it; call it
// once, after the bridge's last change (after its connection is closed,
// so that the last sample shows it), while r is still open. sample is
// called from that goroutine and must be safe for concurrent use with the
// bridge (Stats is). A ring closed meanwhile (or read-only, or whose
// segment faults) is simply not written: the block is display only, and
// never a reason to fail.
func startStatus(r *ipc.Ring, dir int, sample func() statusSample) (stop func()) {
	h := handle.Of(r)
	d := ring.BridgeDir(dir)
	base := ring.BridgeBlock{
		PID:          uint64(os.Getpid()),
		PIDNamespace: proc.PIDNamespace(),
		Started:      uint64(time.Now().UnixNano()),
	}
	store := func(s statusSample) {
		b := base
		b.State, b.Connection, b.Window, b.InFlight = s.State, s.Connection, s.Window, s.InFlight
		b.Moved, b.Acked, b.Errors, b.Reconnects = s.Moved, s.Acked, s.Errors, s.Reconnects
		b.Duplicates, b.Mark = s.Duplicates, s.Mark
		b.Heartbeat = uint64(time.Now().UnixNano())
		if h.Enter() != nil {
			return
		}
		defer h.Leave()
		if h.Seg.ReadOnly() {
			return
		}
		_ = h.Inspect(func() error { h.R.StoreBridge(d, &b); return nil })
	}
	store(sample())

	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(statusEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				store(sample())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			s := sample()
			s.State = ring.BridgeStopped
			store(s)
		})
	}
}
