//go:build amd64 && !race

package ring

import "sync/atomic"

// publish stores v to w with release semantics: every store the caller made
// before it is visible to a processor that observes v. On amd64 (TSO) a
// plain MOV already has release semantics; sync/atomic's Store uses XCHG,
// which also drains the store buffer and costs 3x on a ring's hot path
// (measured: docs/benchmarks.md). The assembly body is opaque to the
// compiler, so no store is moved past the call. Under the race detector the
// portable Store is used instead, so the detector sees the happens-before edge.
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
