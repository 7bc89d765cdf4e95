package route

import (
	"time"

	"github.com/shmring/shmring/internal/handle"
)

// The routing counters in the segment (docs/layout.md, "Line 12"): each
// ring's line 12 sums the routed, spilled and skipped counts of every
// router routing into it, so that ringctl stat and the metrics collectors,
// in other processes, can show them. Send never touches the segment for
// them: it counts in the lane (single writer, no locked instruction), and
// the sampler adds the deltas since its last flush to the line, one atomic
// add per counter that changed, then stores the time. Close flushes the
// rest after the sampler has stopped.

// initFlush prepares l's flush: the ring's internals (the handle ops uses)
// and line 12's words. The words stay valid while the ring is open, which
// it must be until the Router is closed; flush enters the ring anyway, so
// that a ring closed too early is skipped rather than touched.
func (l *lane) initFlush() {
	l.h = handle.Of(l.r)
	l.line = l.h.R.RouteLine()
	l.flushFn = l.addPending
}

// flush adds to l's line 12 what the router counted since the last flush,
// stamped now. Run by the sampler, or by Close once the sampler has
// stopped: never concurrently. A ring that is closed or whose segment
// cannot be read is skipped; what it failed to add is not retried (the
// counts are display only, and a retry after a fault part-way could count
// twice).
func (l *lane) flush(now time.Time) {
	cur := [3]uint64{l.routed.Load(), l.spilled.Load(), l.skipped.Load()}
	if cur == l.flushed {
		return
	}
	for i := range cur {
		l.pending[i] = cur[i] - l.flushed[i]
	}
	l.flushed, l.pendingAt = cur, now.UnixNano()
	if l.h.Enter() != nil {
		return
	}
	defer l.h.Leave()
	_ = l.h.Inspect(l.flushFn)
}

// addPending is flush's work on the segment, run under Inspect (a fault
// becomes an error instead of a crash). Atomic adds: other routers, in
// other processes, add to the same words.
func (l *lane) addPending() error {
	if n := l.pending[0]; n != 0 {
		l.line.Routed.Add(n)
	}
	if n := l.pending[1]; n != 0 {
		l.line.Spilled.Add(n)
	}
	if n := l.pending[2]; n != 0 {
		l.line.Skipped.Add(n)
	}
	l.line.Flushed.Store(uint64(l.pendingAt))
	return nil
}
