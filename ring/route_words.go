// Line 12: the routing counters that routers (package route) keep in the
// ring, so that a tool in another process (ringctl stat, the metrics
// collectors) can show them. As with words.go, this package places the
// words and nothing in it reads them to decide anything.

package ring

import "sync/atomic"

// RouteLine is line 12's words (docs/layout.md, "Line 12"): the counts of
// every router routing into the ring, in any process, summed. A router
// adds what it counted since its last flush with an atomic add (several
// routers may share a ring) and then stores the time in Flushed. The words
// publish nothing and order nothing: they are display only, and a reader
// must take any value they hold (a co-tenant may have written anything).
type RouteLine struct {
	// Routed counts messages routers wrote to this ring.
	Routed *atomic.Uint64
	// Spilled counts messages keyed to this ring (by-key routing with
	// spill-over) that a router sent to another ring instead.
	Spilled *atomic.Uint64
	// Skipped counts the times a message passed this ring over because it
	// was out of a router's rotation (its consumer dead or stalled).
	Skipped *atomic.Uint64
	// Flushed is the Unix time in nanoseconds (CLOCK_REALTIME) of the last
	// flush into this line by any router; 0 if none ever did.
	Flushed *atomic.Uint64
}

// RouteLine returns line 12's words.
func (r *Ring) RouteLine() RouteLine {
	return RouteLine{
		Routed:  word(r.region, offRouteRouted),
		Spilled: word(r.region, offRouteSpilled),
		Skipped: word(r.region, offRouteSkipped),
		Flushed: word(r.region, offRouteFlushed),
	}
}
