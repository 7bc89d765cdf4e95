package ops

import (
	"time"

	"github.com/shmring/shmring/ipc"
)

// RouteCounters is a ring's routing counters (docs/layout.md, "Line 12"):
// the counts of every router (package route) that routes into the ring, in
// any process, summed. Each router adds what it counted to them every
// sample of its health (route.Config.Sample, 5 ms by default) and when it
// closes, so they lag the routers' own counts (route.Router.Stats) by at
// most one sample interval. They are display only: another process with
// the segment open read-write can store anything in them, and nothing
// reads them to decide anything.
type RouteCounters struct {
	Routed  uint64 // messages routers wrote to this ring
	Spilled uint64 // messages keyed to this ring (by key, with spill-over) that went to another ring
	Skipped uint64 // times a message passed this ring over because it was out of a router's rotation (consumer dead or stalled)
	// LastFlush is when a router last added to the counters (the zero
	// Time if none ever did): a router routing into the ring now flushes
	// every sample interval while it has counted something new.
	LastFlush time.Time
}

// IsZero reports whether no router ever counted anything in the ring.
func (c RouteCounters) IsZero() bool {
	return c.Routed == 0 && c.Spilled == 0 && c.Skipped == 0 && c.LastFlush.IsZero()
}

// Routing returns r's routing counters (see RouteCounters). It works on a
// ring opened read-only. Any value is possible and none is an error; a
// segment that cannot be read returns ipc.ErrCorrupt with ErrFault; after
// the ring's Close, ipc.ErrClosed; a nil ring, fs.ErrInvalid.
func Routing(r *ipc.Ring) (RouteCounters, error) {
	h, err := enter("routing counters", r)
	if err != nil {
		return RouteCounters{}, err
	}
	defer h.Leave()
	var c RouteCounters
	err = h.Inspect(func() error {
		l := h.R.RouteLine()
		c.Routed, c.Spilled, c.Skipped = l.Routed.Load(), l.Spilled.Load(), l.Skipped.Load()
		if ns := l.Flushed.Load(); ns != 0 {
			// Any u64 is a valid int64 bit pattern: a scribbled value
			// gives an odd time, not a panic.
			c.LastFlush = time.Unix(0, int64(ns))
		}
		return nil
	})
	if err != nil {
		return RouteCounters{}, err
	}
	return c, nil
}
