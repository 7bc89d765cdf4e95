// Package ops holds shmring's operator tools: what ringctl (and the
// metrics package, and anyone's own tooling) uses to look into rings and
// adjust them, kept out of package ipc so that a program that only
// produces or consumes links none of it.
//
//   - [Doctor] checks a ring (positions, every pending record, producer
//     slots) and can repair one stuck behind a dead producer's reservation.
//   - [Peek] copies out waiting messages without consuming them.
//   - [List] reads every ring in a directory (and notices what a killed
//     Create left behind).
//   - [SetPolicy] overrides, in the segment, how every producer and the
//     consumer of a ring behave when they must wait, in whatever process
//     they run ([Policy], [ParsePolicy]).
//   - [ResetHighWater], [SetPressureLevels] and [SetTargetDelay] adjust
//     the ring's counters and pressure levels; [Header], [Slot] and
//     [Routing] (the routing counters of package route's routers) read
//     what ipc.Ring.Stats does not show.
//   - [Bridges] reads the state a NATS bridge (package bridge) publishes
//     in the ring's segment.
//
// Every function takes a ring opened with ipc.Open (or ipc.Create); those
// that only read work on a ring opened with ipc.WithReadOnly, which is how
// an operator should open one to look. They are safe for concurrent use,
// with each other, with the ring's Close and with its producers and
// consumer in any process; the reading ones cost those nothing (SetPolicy
// wakes waiters so that they see the override; Doctor's repair takes the
// consumer role, so it needs the ring's consumer closed). A segment is
// memory another process writes: everything
// read from it is validated, damage is reported as ipc.ErrCorrupt, never
// a panic, and a segment whose file was truncated under the mapping (a
// read would crash the process with SIGBUS) is reported as ipc.ErrCorrupt
// and [ErrFault] instead of being read.
//
// Errors are values to test with errors.Is: [ErrReadOnly], [ErrFault],
// [ErrInvalidPolicy], ipc's sentinels and io/fs's. None needs matching on
// its text.
package ops
