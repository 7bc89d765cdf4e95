//go:build amd64 && !race

package ring

import "sync/atomic"

// copyInline: the fast write paths copy payloads of 16 to 64 bytes with
// copySmall's unaligned word moves (unsafe.go), inline, rather than with
// a call of runtime.memmove.
const copyInline = true

// publish stores v to w with release semantics: every load and store the
// caller made before it is ordered before it, for a processor that
// observes v. Two orders must hold, the processor's and the compiler's.
//
// The processor: amd64 is TSO: a store is not made visible before earlier
// stores, nor before earlier loads are done; so a plain MOV is a release
// store. sync/atomic's Store compiles to XCHG (go tool objdump: XCHGQ in
// every (*atomic.Uint64).Store), a locked instruction that also drains the
// store buffer: a full fence the release store does not need, 3x on a
// ring's hot path (docs/benchmarks.md).
//
// The compiler: a plain store (storePlain), inlined here. Nothing in the
// language promises that the gc compiler keeps it after the caller's
// earlier memory operations; what follows is how gc (Go 1.26,
// cmd/compile/internal/ssa) treats them, checked in its source and in the
// compiled code. Every store takes the previous memory state and makes the
// next one: a block's stores form one chain, scheduled in program order
// (schedule.go, storeOrder), so the payload's copy (a call of
// runtime.memmove, or inline moves), the header and the position are
// stored in program order. Every load takes the memory state it reads,
// and the scheduler adds an edge from each load to the store that follows
// its memory state ("any load must come before the following store"), so
// no earlier load sinks below the store; tighten moves a load to another
// block only if that block starts with the load's memory state (no store
// between). What gc may do to stores: dead-store elimination drops a store
// that a later store to the same address in the same block overwrites
// with no load between (the later value publishes at least as much), and
// memcombine merges adjacent narrow stores into one (never reordering
// them past a wider one of ours, which is already a whole word). The
// compiled TryWrite shows it (go tool objdump -s 'ring.\(\*Producer\).TryWrite$'):
// CALL runtime.memmove, then the header's MOVQ, then the position's
// MOVQ, then the counters'.
//
// So this relies on gc's implementation, as the assembly stub it replaces
// did (an opaque call that the compiler would not inline or see through:
// the same assumption about the toolchain, at the price of a call with its
// arguments on the stack and the caller's registers spilled around it, ~25
// instructions a message on the one-core loop). A compiler that reordered
// memory operations (gccgo, a future gc that sank stores or hoisted loads
// past stores) would break it: a consumer could see a position or header
// before the bytes it publishes. Under the race detector, and on every
// other architecture, publish_other.go uses sync/atomic's Store, which
// the detector understands.
func publish(w *atomic.Uint64, v uint64) { storePlain(w, v) }

// add2 adds da to a and db to b, for counters with a single writer: a load
// and a plain store of each aligned word (publish's store), which readers
// see whole (they load atomically). No read-modify-write instruction is
// needed: nobody else writes these words.
func add2(a *atomic.Uint64, da uint64, b *atomic.Uint64, db uint64) {
	storePlain(a, a.Load()+da)
	storePlain(b, b.Load()+db)
}
