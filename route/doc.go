// Package route sends each message to one of several rings, chosen by a
// strategy, and routes around rings whose consumer is dead, stalled or
// behind: a producer-side Router over N rings, say one per worker process.
//
// Strategies ([Strategy]):
//
//   - [LeastDepth] (the default) sends to the ring with the fewest bytes
//     waiting, as the router estimates them (below).
//   - [RoundRobin] takes the rings in turn, skipping those that are
//     pressured (their soft pressure level is raised, or they were full)
//     while any other has room.
//   - [ByKey] sends every message with the same key (SendKey) to the same
//     ring, a hash of the key, so that messages of one key keep their order.
//     With Config.Spill a message whose ring is pressured, full or unhealthy
//     goes to the next healthy ring instead (counted in RingStats.Spilled),
//     at the price of that order; Spill is off by default.
//
// Health: a ring whose consumer is dead (no process holds its consumer
// role) or stalled (messages wait and its consumer position has not moved
// for Config.StallAfter) leaves the rotation of LeastDepth, RoundRobin and
// spilling ByKey, and returns when its consumer does. Its backlog stays in
// the ring for the restarted consumer: the router never moves or drops a
// message it has written. ByKey without Spill keeps writing a key's
// messages to its ring whatever its health (while there is room), since
// order per key is what it promises.
//
// Cost: health and depth are sampled by a goroutine of the Router every
// Config.Sample (5 ms by default) with one ipc.Ring.Stats per ring: Send
// makes no Stats call, reads no clock and allocates nothing. Between samples
// a ring's depth is estimated as the sampled depth plus the bytes routed to
// it since (an upper bound: consumers only lower it).
//
// When no ring takes a message (every one full, or out of the rotation),
// Config.Full decides, in ipc's words: wait (the zero value) until a ring
// has room or ctx ends, [ipc.Drop] (ErrFull, counted in Stats.Dropped), or
// Config.Overflow. TrySend never waits.
//
// Guarantees: a message Send returns nil for was written to exactly one ring;
// one it returns an error for was written to none. The router never
// duplicates nor moves a message; a consumer killed while handling a message
// gets it again when it restarts (ipc releases a message after its
// callback), so consumers that must handle each message once check ids.
// docs/routing.md has the details and measurements.
//
// A Router is used by one goroutine at a time, as an ipc.Producer is;
// Stats is safe for concurrent use.
package route
