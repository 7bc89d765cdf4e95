// Package futex wraps the two system calls of shmring's waiting protocol:
// futex wait and wake on a 32-bit word in a shared mapping, and the
// process-wide memory barrier (membarrier) that lets the fast path of the
// other side skip a fence.
//
// The contract, as in the Go runtime's lock_futex.go: Wait may return
// spuriously (woken by someone else, interrupted by a signal, the word
// already changed); callers loop and re-check their condition.
//
// The futexes are shared (no FUTEX_PRIVATE_FLAG): the word lives in memory
// that other processes map, and the kernel keys a shared futex by the
// underlying page, not the virtual address.
package futex

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	futexWait = 0 // FUTEX_WAIT, shared
	futexWake = 1 // FUTEX_WAKE, shared
)

// Wait sleeps while *addr == val, for at most timeout (forever if timeout
// <= 0). It returns nil when woken, when the word differs, or on EINTR;
// os.ErrDeadlineExceeded-compatible ErrTimeout when the timeout passed.
func Wait(addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	var ts *unix.Timespec
	if timeout > 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		return ErrTimeout
	}
	return e
}

// ErrTimeout is returned by Wait when its timeout passed.
var ErrTimeout = errors.New("futex: timeout")

// Wake wakes up to n waiters on addr and returns how many it woke.
func Wake(addr *atomic.Uint32, n int) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

const (
	membarrierQuery                  = 0
	membarrierGlobalExpedited        = 1 << 1
	membarrierRegisterGlobalExpedite = 1 << 2
)

var (
	registerOnce sync.Once
	barrierOK    bool
)

// Register makes this process a target of other processes' Barrier calls
// (MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED). Every process that uses a
// ring registers once; Available reports whether it worked.
func Register() bool {
	registerOnce.Do(func() {
		r, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierQuery, 0, 0)
		if e != 0 || r&membarrierGlobalExpedited == 0 {
			return
		}
		_, _, e = unix.Syscall(unix.SYS_MEMBARRIER, membarrierRegisterGlobalExpedite, 0, 0)
		barrierOK = e == 0
	})
	return barrierOK
}

// Barrier makes every running thread of every registered process execute a
// full memory barrier before it returns: a store any of them made before
// that point is then visible to the caller, and any load they make after it
// sees the caller's earlier stores. This is the heavy half of an asymmetric
// Dekker handshake whose light half (a plain store then a plain load on the
// fast path) needs no fence. It reports false if the call is unavailable,
// in which case the caller must not rely on it (and bounds its waits).
func Barrier() bool {
	if !Register() {
		return false
	}
	_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierGlobalExpedited, 0, 0)
	return e == 0
}
