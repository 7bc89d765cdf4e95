package futex

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxWaitV is the most words one WaitV sleeps on (the kernel's
// FUTEX_WAITV_MAX).
const MaxWaitV = 128

// futex2Size32 is FUTEX2_SIZE_U32: the word is 32 bits. No FUTEX2_PRIVATE:
// the words are shared futexes, keyed as Wake (FUTEX_WAKE, shared) keys them.
const futex2Size32 = 0x02

// waitv is the kernel's struct futex_waitv.
type waitv struct {
	val      uint64
	uaddr    uint64
	flags    uint32
	reserved uint32
}

// Vec is a list of futex words, each with the value to sleep while it holds,
// for one futex_waitv sleep (Linux 5.16+): a waiter sleeps until any of them
// is woken. Reset and refill it for each sleep; it allocates only when it
// grows. Not safe for concurrent use.
//
// Every word must stay mapped (a segment's, or a Go variable kept alive by
// the caller: the Go heap does not move) until Wait returns.
type Vec struct{ ws []waitv }

// Reset empties v, keeping its storage.
func (v *Vec) Reset() { v.ws = v.ws[:0] }

// Len returns how many words v holds.
func (v *Vec) Len() int { return len(v.ws) }

// Add appends addr, to sleep on while it holds val. At most MaxWaitV words:
// Wait fails with EINVAL beyond.
func (v *Vec) Add(addr *atomic.Uint32, val uint32) {
	v.ws = append(v.ws, waitv{val: uint64(val), uaddr: uint64(uintptr(unsafe.Pointer(addr))), flags: futex2Size32})
}

// Wait sleeps while every word holds its value, for at most timeout (forever
// if timeout <= 0). It returns the index of the word that was woken, or -1
// with a nil error when a word already differed (EAGAIN) or a signal
// interrupted the sleep, and -1 with ErrTimeout when the timeout passed. The
// contract is Wait's: spurious returns happen, the caller re-checks.
// ENOSYS (a kernel before 5.16) is returned as is; see WaitVAvailable.
func (v *Vec) Wait(timeout time.Duration) (int, error) {
	if len(v.ws) == 0 {
		return -1, unix.EINVAL
	}
	var ts *unix.Timespec
	if timeout > 0 {
		// futex_waitv takes an absolute time on the clock it is given.
		now, err := monotonicNow()
		if err != nil {
			return -1, err
		}
		t := unix.NsecToTimespec(now + int64(timeout))
		ts = &t
	}
	r, _, e := unix.Syscall6(unix.SYS_FUTEX_WAITV, uintptr(unsafe.Pointer(&v.ws[0])), uintptr(len(v.ws)), 0,
		uintptr(unsafe.Pointer(ts)), uintptr(unix.CLOCK_MONOTONIC), 0)
	switch e {
	case 0:
		return int(r), nil
	case unix.EAGAIN, unix.EINTR:
		return -1, nil
	case unix.ETIMEDOUT:
		return -1, ErrTimeout
	}
	return -1, e
}

var (
	waitvOnce sync.Once
	waitvOK   bool

	clockOnce sync.Once
	clockErr  error
	clockBase int64     // CLOCK_MONOTONIC, in ns, at clockAt
	clockAt   time.Time // with Go's monotonic reading
)

// monotonicNow returns CLOCK_MONOTONIC in ns without a system call
// (x/sys's ClockGettime is one; the runtime's is the vDSO's): one reading
// of the clock, then Go's monotonic time since, which on Linux is that
// same clock. Off by the few ns between the two first readings, which only
// moves a sleep's timeout.
func monotonicNow() (int64, error) {
	clockOnce.Do(func() {
		var ts unix.Timespec
		clockErr = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		clockBase, clockAt = ts.Nano(), time.Now()
	})
	if clockErr != nil {
		return 0, clockErr
	}
	return clockBase + int64(time.Since(clockAt)), nil
}

// WaitVAvailable reports whether the kernel has futex_waitv (Linux 5.16+):
// a call with no words fails with EINVAL where it exists, ENOSYS where not.
func WaitVAvailable() bool {
	waitvOnce.Do(func() {
		_, _, e := unix.Syscall6(unix.SYS_FUTEX_WAITV, 0, 0, 0, 0, 0, 0)
		waitvOK = e != unix.ENOSYS
	})
	return waitvOK
}
