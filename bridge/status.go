package bridge

import "github.com/shmring/shmring/ipc"

// STUB: the bridge block in the segment (docs/layout.md, line 13 out, 14
// in). The implementation replaces this file.

// Directions of a bridge block.
const (
	statusOut = 1
	statusIn  = 2
)

// statusSample is what a bridge publishes in its ring's bridge block.
type statusSample struct {
	State      uint64 // a state code (the implementation defines them)
	Connection uint64 // a connection code
	Window     uint64 // out: OutConfig.Window; in: InConfig.Batch
	InFlight   uint64 // out: publishes awaiting acknowledgement; in: 1 while paused
	Moved      uint64 // out: published; in: written into the ring
	Acked      uint64
	Errors     uint64
	Reconnects uint64
	Duplicates uint64
	Mark       uint64 // out: messages released; in: the last stream sequence in the ring
}

// startStatus publishes sample() in r's bridge block for direction dir
// until stop is called (stop marks the block stopped).
func startStatus(r *ipc.Ring, dir int, sample func() statusSample) (stop func()) {
	return func() {}
}
