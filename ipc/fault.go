package ipc

import (
	"fmt"
	"runtime/debug"
)

// guard runs f with memory faults turned into ErrCorrupt instead of a crash:
// a segment that another process truncated after we mapped it makes every
// access past the new end raise SIGBUS, which the Go runtime can deliver as
// a panic to the faulting goroutine (debug.SetPanicOnFault). The inspection
// paths (Stats, Peek, Doctor, ResetHighWater) run under it, since they are
// what an operator points at a suspicious segment. The write and read hot
// paths do not: a deferred recover per message would cost more than the
// protection is worth there; a process whose segment is truncated under it
// mid-transfer dies with SIGBUS (docs/security.md says so, and how to avoid
// it).
func guard(path string, f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			err = fmt.Errorf("ipc: %q: reading the segment faulted (%v): the file was truncated or removed under its mapping; recreate it: %w", path, r, ErrCorrupt)
		}
	}()
	return f()
}
