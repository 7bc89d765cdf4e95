//go:build !amd64 || race

package ring

import "sync/atomic"

// publish stores v to w with (at least) release semantics. See
// publish_amd64.go for why amd64 uses its own.
func publish(w *atomic.Uint64, v uint64) { w.Store(v) }
