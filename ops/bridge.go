package ops

import (
	"fmt"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
)

// BridgeStaleAfter is how old a bridge block's heartbeat may be before
// Bridges calls the bridge stale (dead or hung: stopped without its final
// sample). A running bridge stores it every 100 ms; the margin is for a
// loaded machine. The writer's PID is no test of liveness: it may be in
// another PID namespace.
const BridgeStaleAfter = 5 * time.Second

// Bridge is one bridge block of a ring (docs/layout.md, "Lines 13 and
// 14"): the state a NATS bridge (package bridge) publishes in the segment
// every 100 ms, readable from any process. Every value was written by
// another process: it is for display only, never a size or an index.
// Counters count since that bridge started; the words are read one by
// one, not at one instant.
type Bridge struct {
	// Direction is "out" (ring → stream: the bridge is the ring's
	// consumer) or "in" (stream → ring: the bridge is a producer).
	Direction string
	// Heartbeat is the time of the last sample; Age how long ago that was
	// (as this process's clock sees it).
	Heartbeat time.Time
	Age       time.Duration
	// Stale: the bridge died or hangs: its heartbeat is older than
	// BridgeStaleAfter (or implausibly far in the future) and State is not
	// "stopped". A cleanly stopped bridge (its last sample says "stopped")
	// is never stale, however old its heartbeat.
	Stale bool
	// Up: the heartbeat is fresh and the bridge has not stopped.
	Up bool
	// PID and PIDNamespace identify the writer as slots do: the PID in its
	// own namespace, the namespace's inode (0 unknown). Started is when it
	// started writing the block.
	PID          uint64
	PIDNamespace uint64
	Started      time.Time
	// State is what the bridge is doing: "idle", "reading" (out),
	// "full" (out: the publish window is full), "retrying", "stopped",
	// "resyncing" (in), "fetching" (in), "paused" (in: the ring's
	// pressure is raised), or "unknown(N)" for a code this reader does not
	// know.
	State string
	// Connection is the NATS connection's status: "connected",
	// "connecting", "reconnecting", "disconnected", "closed", "draining",
	// "unknown".
	Connection string
	// Window: out, the most publishes awaiting acknowledgement; in, the
	// fetch batch. InFlight: out, publishes awaiting acknowledgement; in,
	// 1 while paused.
	Window   uint64
	InFlight uint64
	// Moved: out, publishes sent (re-publishes included); in, messages
	// written into the ring.
	Moved uint64
	// Acked: out, publishes the stream acknowledged; in, messages
	// acknowledged to the stream.
	Acked uint64
	// Errors counts NATS-side failures, each retried; Reconnects the NATS
	// connection's reconnections.
	Errors     uint64
	Reconnects uint64
	// Duplicates: out, acknowledgements the stream marked duplicate; in,
	// deliveries the ring held already.
	Duplicates uint64
	// Mark: out, messages released from the ring (acknowledged in order);
	// in, the stream sequence up to which every message is in the ring.
	Mark uint64
}

var bridgeStates = [...]string{
	ring.BridgeIdle: "idle", ring.BridgeReading: "reading", ring.BridgeFull: "full",
	ring.BridgeRetrying: "retrying", ring.BridgeStopped: "stopped", ring.BridgeResyncing: "resyncing",
	ring.BridgeFetching: "fetching", ring.BridgePaused: "paused",
}

var bridgeConns = [...]string{
	ring.BridgeConnUnknown: "unknown", ring.BridgeConnConnected: "connected", ring.BridgeConnConnecting: "connecting",
	ring.BridgeConnReconnecting: "reconnecting", ring.BridgeConnDisconnected: "disconnected",
	ring.BridgeConnClosed: "closed", ring.BridgeConnDraining: "draining",
}

// name returns names[code], or "unknown(code)": code comes from the
// segment, so it is checked before it indexes anything.
func name(names []string, code uint64) string {
	if code < uint64(len(names)) && names[code] != "" {
		return names[code]
	}
	return fmt.Sprintf("unknown(%d)", code)
}

// Bridges returns the bridge blocks of r that a bridge has ever written
// (heartbeat not 0): the out-bridge's first, then the in-bridge's; none if
// no bridge ever ran on r. It works on a ring opened read-only. A segment
// that cannot be read returns ipc.ErrCorrupt with ErrFault; after the
// ring's Close, ipc.ErrClosed.
func Bridges(r *ipc.Ring) ([]Bridge, error) {
	h, err := enter("bridges", r)
	if err != nil {
		return nil, err
	}
	defer h.Leave()
	var blocks [2]ring.BridgeBlock
	dirs := [2]ring.BridgeDir{ring.BridgeOut, ring.BridgeIn}
	if err := h.Inspect(func() error {
		for i, d := range dirs {
			blocks[i] = h.R.LoadBridge(d)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	now := time.Now()
	var out []Bridge
	for i, b := range blocks {
		if b.Heartbeat == 0 {
			continue
		}
		out = append(out, bridgeOf(dirs[i], b, now))
	}
	return out, nil
}

// bridgeOf turns a block's words into a Bridge as seen at now.
func bridgeOf(dir ring.BridgeDir, b ring.BridgeBlock, now time.Time) Bridge {
	br := Bridge{
		Direction: "out", PID: b.PID, PIDNamespace: b.PIDNamespace,
		State: name(bridgeStates[:], b.State), Connection: name(bridgeConns[:], b.Connection),
		Window: b.Window, InFlight: b.InFlight, Moved: b.Moved, Acked: b.Acked,
		Errors: b.Errors, Reconnects: b.Reconnects, Duplicates: b.Duplicates, Mark: b.Mark,
	}
	if dir == ring.BridgeIn {
		br.Direction = "in"
	}
	br.Heartbeat = unixNanos(b.Heartbeat)
	br.Started = unixNanos(b.Started)
	br.Age = now.Sub(br.Heartbeat)
	stopped := b.State == ring.BridgeStopped
	br.Stale = !stopped && (br.Age > BridgeStaleAfter || br.Age < -BridgeStaleAfter)
	br.Up = !br.Stale && !stopped
	return br
}

// unixNanos is the time v (Unix ns from the segment) names; values past
// what an int64 holds are clamped rather than wrapped into the past.
func unixNanos(v uint64) time.Time {
	if v > 1<<63-1 {
		v = 1<<63 - 1
	}
	return time.Unix(0, int64(v))
}
