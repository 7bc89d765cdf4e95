//go:build !amd64 || race

package ring

import "sync/atomic"

// copyInline: off, every payload is copied with memmove (see
// publish_amd64.go).
const copyInline = false

// publish stores v to w with (at least) release semantics. See
// publish_amd64.go for why amd64 uses its own.
func publish(w *atomic.Uint64, v uint64) { w.Store(v) }

// add2 adds da to a and db to b; single writer per counter.
func add2(a *atomic.Uint64, da uint64, b *atomic.Uint64, db uint64) {
	a.Store(a.Load() + da)
	b.Store(b.Load() + db)
}
