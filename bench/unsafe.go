package bench

import (
	"sync/atomic"
	"unsafe"
)

// This file is the only one in package bench that imports unsafe.
//
// word32 turns 4 aligned bytes of a shared mapping into the *atomic.Uint32
// the raw futex peer sleeps on; the mapping outlives every use (the case
// unmaps it only after its children exit).
func word32(b []byte, off int) *atomic.Uint32 {
	if off%4 != 0 || off+4 > len(b) {
		panic("bench: word32 out of range")
	}
	return (*atomic.Uint32)(unsafe.Pointer(&b[off]))
}
