// Package spin holds the waiting primitives of the policies: a CPU pause
// for busy-wait loops and a yield of the processor to another thread or
// process (runtime.Gosched only yields to goroutines of this process, which
// does not help when the peer we wait for is another process on the same
// core).
package spin

import "golang.org/x/sys/unix"

// Yield gives up the processor to any runnable thread of any process
// (sched_yield). It costs a system call.
func Yield() {
	_, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
}
