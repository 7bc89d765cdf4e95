// The bridge blocks: lines 13 (out-bridge) and 14 (in-bridge) of the
// control block, where a NATS bridge (package bridge) publishes its state
// so that any process (ringctl, the metrics collector) can read it from
// the segment. This package only places the words and names the codes;
// nothing in it reads them to decide anything. docs/layout.md, "Lines 13
// and 14", is written from this file.

package ring

// Bridge block lines and the offsets of their words within a line. Every
// word is a u64 accessed with 64-bit atomics; bytes 112..127 of each line
// are reserved (zero).
const (
	offBridgeOut = 13 * LineSize // the out-bridge's block (ring → stream): the ring's consumer
	offBridgeIn  = 14 * LineSize // the in-bridge's block (stream → ring): a producer

	bridgeBeat       = 0   // Unix ns (CLOCK_REALTIME) of the last sample; 0: no bridge ever wrote the block
	bridgePID        = 8   // the writer's PID in its own PID namespace (display only)
	bridgePIDNS      = 16  // the writer's PID namespace, inode of /proc/self/ns/pid; 0 unknown
	bridgeStarted    = 24  // Unix ns when the writer started the block
	bridgeState      = 32  // a BridgeState code
	bridgeConn       = 40  // a BridgeConn code
	bridgeWindow     = 48  // out: the publish window; in: the fetch batch
	bridgeInFlight   = 56  // out: publishes awaiting acknowledgement; in: 1 while paused
	bridgeMoved      = 64  // out: publishes sent; in: messages written into the ring
	bridgeAcked      = 72  // acknowledgements (out: received from the stream; in: sent to it)
	bridgeErrors     = 80  // failures counted (and retried)
	bridgeReconnects = 88  // NATS reconnections
	bridgeDuplicates = 96  // out: publishes the stream called duplicates; in: deliveries the ring held already
	bridgeMark       = 104 // out: messages released from the ring; in: the stream sequence every message up to which is in the ring
	bridgeEnd        = 112
)

// Compile-time checks (see layout.go): both blocks inside the control
// block, past line 12, each inside its line.
const (
	_ = uint(-(offBridgeOut % LineSize))
	_ = uint(offBridgeOut - endOfDefined) // the lines defined before stay before them
	_ = uint(ControlSize - (offBridgeIn + LineSize))
	_ = uint(LineSize - bridgeEnd)
	_ = uint(-(bridgeMark % 8))
)

// BridgeDir selects a bridge block: the out-bridge's (line 13) or the
// in-bridge's (line 14).
type BridgeDir int

// The two bridge blocks.
const (
	BridgeOut BridgeDir = 1
	BridgeIn  BridgeDir = 2
)

// BridgeState codes (the state word, +32). 0 is never written by a
// running bridge. Readers show any other value as unknown.
const (
	BridgeIdle      = 1 // built, not running
	BridgeReading   = 2 // out: reading the ring and publishing
	BridgeFull      = 3 // out: the publish window is full, waiting for acknowledgements
	BridgeRetrying  = 4 // a NATS-side failure: pausing, then retrying
	BridgeStopped   = 5 // stopped cleanly (the last sample of a Close)
	BridgeResyncing = 6 // in: reading the consumer's state, recovering deliveries
	BridgeFetching  = 7 // in: fetching from the stream and writing into the ring
	BridgePaused    = 8 // in: not fetching while the ring's pressure is raised
)

// BridgeConn codes (the connection word, +40): the NATS connection's
// status. Readers show any other value as unknown.
const (
	BridgeConnUnknown      = 0
	BridgeConnConnected    = 1
	BridgeConnConnecting   = 2
	BridgeConnReconnecting = 3
	BridgeConnDisconnected = 4
	BridgeConnClosed       = 5
	BridgeConnDraining     = 6
)

// BridgeBlock is a bridge block's words as values: what a bridge stores,
// what a reader loads. The words are loaded one by one, not at one instant.
type BridgeBlock struct {
	Heartbeat, PID, PIDNamespace, Started uint64
	State, Connection, Window, InFlight   uint64
	Moved, Acked, Errors, Reconnects      uint64
	Duplicates, Mark                      uint64
}

// bridgeWords pairs each field of b with its offset in a block.
func bridgeWords(b *BridgeBlock) [14]struct {
	off uint64
	v   *uint64
} {
	return [14]struct {
		off uint64
		v   *uint64
	}{
		{bridgePID, &b.PID}, {bridgePIDNS, &b.PIDNamespace}, {bridgeStarted, &b.Started},
		{bridgeState, &b.State}, {bridgeConn, &b.Connection}, {bridgeWindow, &b.Window},
		{bridgeInFlight, &b.InFlight}, {bridgeMoved, &b.Moved}, {bridgeAcked, &b.Acked},
		{bridgeErrors, &b.Errors}, {bridgeReconnects, &b.Reconnects}, {bridgeDuplicates, &b.Duplicates},
		{bridgeMark, &b.Mark}, {bridgeBeat, &b.Heartbeat},
	}
}

func bridgeLine(dir BridgeDir) uint64 {
	if dir == BridgeIn {
		return offBridgeIn
	}
	return offBridgeOut
}

// StoreBridge stores b in dir's block, each word an atomic store, the
// heartbeat last. Only the bridge of that direction calls it (one writer:
// the out-bridge holds the consumer role; of several in-bridges into one
// MPSC ring, the last to store wins, see docs/layout.md). The stores
// publish nothing: readers use the words for display only.
func (r *Ring) StoreBridge(dir BridgeDir, b *BridgeBlock) {
	line := bridgeLine(dir)
	for _, w := range bridgeWords(b) {
		word(r.region, line+w.off).Store(*w.v)
	}
}

// LoadBridge loads dir's block, each word an atomic load (pairing with
// nothing: display values, which a reader must not index or size anything
// by). A block never written is all zero (Heartbeat 0).
func (r *Ring) LoadBridge(dir BridgeDir) BridgeBlock {
	var b BridgeBlock
	line := bridgeLine(dir)
	for _, w := range bridgeWords(&b) {
		*w.v = word(r.region, line+w.off).Load()
	}
	return b
}
