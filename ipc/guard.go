package ipc

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// useGuard detects, in -race builds (raceChecks), a broken concurrency
// contract: a Producer or Consumer used by two goroutines at once. Two
// goroutines writing through one SPSC producer write their records over
// each other and publish positions out of order, which loses messages and
// leaves the ring ErrCorrupt for every process that uses it; two reading
// through one consumer do the same to the consumer position. Each method
// enters the guard before it touches the ring and leaves it on return, so
// the second of two overlapping calls panics, as sync.Mutex does for a
// broken contract of its caller, with nothing written.
//
// Outside -race builds raceChecks is a false constant and every use of the
// guard is inside "if raceChecks", so the compiler removes it: the hot path
// neither loads nor stores anything for it. The guard word itself is
// private to this process's Go heap, never in the segment.
type useGuard struct {
	state atomic.Uint32 // 0 idle; else the op running, | waitingBit while it waits
}

// op names a method for the guard's message.
type op uint32

const (
	opWrite op = iota + 1
	opWriteSeq
	opTryWrite
	opWriteBatch
	opClaim
	opCommit
	opAbort
	opClose
	opTryRead
	opRead
	opBatch
	opInDoubt
	opRelease

	// waitingBit marks a call that waits for room or data: Ring.Close may
	// wake it (it returns ErrClosed), and waits for it to return.
	waitingBit op = 1 << 31
)

var opNames = [...]string{opWrite: "Write", opWriteSeq: "WriteSeq", opTryWrite: "TryWrite",
	opWriteBatch: "WriteBatch", opClaim: "Claim", opCommit: "Commit", opAbort: "Abort",
	opClose: "Close", opTryRead: "TryRead", opRead: "Read", opBatch: "Batch", opInDoubt: "InDoubt", opRelease: "Release"}

func (o op) String() string {
	o &^= waitingBit
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint32(o))
}

// enter marks o running on the guard of a kind ("Producer", "Consumer"),
// or panics if another call is running.
func (g *useGuard) enter(kind string, o op) {
	if !raceChecks {
		return
	}
	if g.state.CompareAndSwap(0, uint32(o)) {
		return
	}
	cur := op(g.state.Load())
	panic(fmt.Sprintf("ipc: %s.%v called while %s.%v runs in another goroutine: a %s is not safe for concurrent use "+
		"(one goroutine at a time; only a Producer's Stats and Pressure may be called from others). "+
		"Give each goroutine its own (an MPSC ring has a producer slot per writer) or serialise the calls",
		kind, o, kind, cur, kind))
}

// exit marks the call done.
func (g *useGuard) exit() {
	if raceChecks {
		g.state.Store(0)
	}
}

// waiting marks the running call as waiting for room or data.
func (g *useGuard) waiting() {
	if raceChecks {
		g.state.Or(uint32(waitingBit))
	}
}

// awaitIdle is Ring.Close's check before it closes an endpoint of kind: a
// call that was waiting has been woken and is on its way out (wait for
// it), and a Close of the endpoint's own is serialised with Ring.Close's;
// any other call running now is in the middle of a write or read, which
// Ring.Close would unmap the segment under: panic, naming it.
func (g *useGuard) awaitIdle(kind string) {
	if !raceChecks {
		return
	}
	for {
		s := op(g.state.Load())
		switch {
		case s == 0, s&^waitingBit == opClose:
			return
		case s&waitingBit == 0:
			panic(fmt.Sprintf("ipc: Ring.Close called while %s.%v runs in another goroutine: "+
				"close the Producer and Consumer first, from the goroutines that use them (Ring.Close may only interrupt a call that waits)",
				kind, s))
		}
		runtime.Gosched()
	}
}
