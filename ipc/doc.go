// Package ipc is shmring's public API: a ring buffer of variable-length
// messages in a shared-memory segment, written by a [Producer] in one
// process and read by a [Consumer] in another (or the same) process.
//
// A ring is a file, by default in /dev/shm, made by [Create] and opened by
// [Open]. Its layout (docs/layout.md) is a public contract. One consumer
// holds the ring at a time, with one producer (SPSC) or a producer per slot
// (MPSC, [WithKind]); each role is an open-file-description lock on the segment file, which the kernel releases
// if the process dies, so a restarted process takes its role back and
// resumes at the last published position.
//
// When the ring is full the producer's [Policy] applies: [Hybrid] (the
// default) spins, yields, then sleeps on a futex in the segment; [Spin],
// [Yield], [Park] and [Block] wait their own way; [Drop] returns [ErrFull] at
// once and counts the drop; [DropOldest] and [Overflow] make room or route the
// message elsewhere. Memory never grows: the ring's capacity is fixed at
// creation. Counters (messages and bytes in and out, full events, drops,
// the high watermark) live in the segment, where any process reads them
// with [Ring.Stats] or ringctl stat; package
// github.com/shmring/shmring/metrics exports them to Prometheus (ipc itself
// links no Prometheus, protobuf or net/http).
//
// Caveats: a message's slice handed to a read callback points into shared
// memory and is valid only until the callback returns. Everything read from
// the segment is validated; damage is reported as [ErrCorrupt], never a
// panic.
//
// Concurrency: a [Ring]'s methods are safe for concurrent use; a [Producer]
// or [Consumer] is used by one goroutine at a time (to write from several
// goroutines, give each its own Producer of an MPSC ring), except for the
// few methods their docs name. -race builds panic when one is used by two
// goroutines at once, before the ring is touched. Close the Producer and
// Consumer before their Ring, from the goroutines that use them; after any
// Close, calls return [ErrClosed]. Ring.Close wakes a Write or Read that is
// waiting for room or data (it returns ErrClosed) but must not run while a
// call is in the middle of a write or read: see [Ring].
package ipc
