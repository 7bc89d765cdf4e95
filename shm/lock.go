package shm

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/shmring/shmring/internal/errs"
	"golang.org/x/sys/unix"
)

// ErrBusy is returned by Lock when another open file description holds a
// conflicting lock on the range.
var ErrBusy = errs.ErrBusy

// A Lock is an exclusive open-file-description lock (F_OFD_SETLK) on a byte
// range of the segment file. The kernel releases it when the holder's last
// descriptor for it closes, which includes the process dying by any means:
// that is what makes it a liveness signal. Each Lock has its own open file
// description, so two Locks in one process conflict just as two processes do.
type Lock struct {
	f *os.File
}

// Lock takes an exclusive lock on the body range [off, off+n) without
// waiting. It returns ErrBusy if another holder has it, and on a segment
// opened ReadOnly an error matching the read-only sentinel of
// internal/errs (ops.ErrReadOnly), taking nothing.
func (s *Segment) Lock(off, n int64) (*Lock, error) {
	if s.ro {
		return nil, fmt.Errorf("shm: lock %q: %w", s.path, errs.ErrReadOnly)
	}
	// A new open file description for the same file: reopening the path
	// could reach another file if it was replaced; /proc/self/fd cannot.
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(s.f.Fd())), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: lock %q: reopen: %w", s.path, err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: HeaderSize + off, Len: n}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("shm: lock %q [%d,+%d): %w", s.path, off, n, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. It is idempotent.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	return f.Close()
}

// Locked reports whether any open file description other than the
// segment's own holds a lock on the body range [off, off+n).
func (s *Segment) Locked(off, n int64) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: HeaderSize + off, Len: n}
	if err := unix.FcntlFlock(s.f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("shm: test lock %q: %w", s.path, err)
	}
	return lk.Type != unix.F_UNLCK, nil
}
