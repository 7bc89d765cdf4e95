//go:build amd64 && !race

package ring

import "sync/atomic"

// publish stores v to w with release semantics: every store the caller made
// before it is visible to a processor that observes v. On amd64 (TSO) a
// plain MOV already has release semantics; sync/atomic's Store uses XCHG,
// which also drains the store buffer and costs 3x on a ring's hot path
// (measured: docs/benchmarks.md). Under the race detector the portable
// Store is used instead, so the detector sees the happens-before edge.
//
// The processor keeps the order; the compiler must too, and nothing in the
// language says it will: this relies on how the gc compiler treats a call
// to an assembly function, not on a documented guarantee. gc compiles such
// a call as an opaque call that may read and write any memory, so it
// neither moves the caller's earlier stores (a payload's bytes, a
// header, a sequence) past it nor keeps them in registers across it; and
// it does not inline assembly. A compiler that did either (gccgo or
// another toolchain, a gc that inlined or analysed assembly bodies, or
// link-time reordering) could let the position or header store become
// visible before the payload it publishes: a consumer would deliver stale
// or torn bytes, and in MPSC rings a committed header could precede its
// payload. The portable fallback (publish_other.go, sync/atomic's Store)
// is the one to use under any other toolchain.
//
//go:noescape
func publish(w *atomic.Uint64, v uint64)

// add2 adds da to a and db to b, for counters with a single writer: an
// unlocked read-modify-write of each aligned word, whose store readers see
// whole (they load atomically). One call instead of two loads and two
// publishes: the counters' share of the hot path (BenchmarkCounters).
//
//go:noescape
func add2(a *atomic.Uint64, da uint64, b *atomic.Uint64, db uint64)
