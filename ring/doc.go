// Package ring implements shmring's ring buffers of variable-length records
// over a plain []byte: heap memory for in-process use and tests, or a shared
// mapping made by package shm. It makes no system calls and knows nothing of
// files or processes.
//
// The region holds a control block (a descriptor, then the producer and
// consumer positions and counters, each on its own 128-byte line) followed
// by a data area whose size is a power of two. Positions are 64-bit byte
// counts that only grow; a record's index is pos & (capacity-1). A record is
// an 8-byte header (length, producer slot, type) and its payload, padded to
// 8 bytes; a record never wraps: a padding record fills the tail instead.
// docs/layout.md gives every byte.
//
// The region is shared with other parties and untrusted: [Attach] validates
// the descriptor, and the [Producer] and [Consumer] validate every position
// and header they load before using it, returning [ErrCorrupt] (and staying
// failed) rather than reading out of bounds.
//
// Kinds: an SPSC ring has one Producer; an MPSC ring has producer slots,
// each written by one Producer (NewSlotProducer), which reserve space with
// compare-and-swap and commit each record with one header store. The MPSC
// consumer zeroes what it consumes, and Consumer.Recover skips a
// reservation whose owner died, asking the [Liveness] the ring was attached
// with ([AttachWithLiveness]).
//
// A Producer and a Consumer are each used by one goroutine. All waiting is
// left to the caller (package ipc adds the policies; this package only
// places the words they use, words.go).
//
// Files, by feature: layout.go (offsets, ownership table), config.go
// (Config, Format, Attach), ring.go (the Ring view, Liveness), record.go
// (the one record decoder), positions.go (the one reader of both
// positions), producer.go and consumer.go (each side's state, resuming,
// releasing, the read path), hold.go (held reads: reading ahead of the
// released position, Release), spsc.go (SPSC writes), mpsc.go (MPSC
// reservation), batch.go, claim.go, header_commit.go, overwrite.go and
// shared_overwrite.go (drop-oldest, SPSC and MPSC), seq.go (sequences),
// recover.go (dead producers), delay.go, flow.go (window, pressure),
// stats.go, peek.go, words.go (ipc's waiting and counter words), and
// unsafe.go, publish_*.go (the only unsafe and assembly).
package ring
