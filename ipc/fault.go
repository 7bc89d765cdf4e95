package ipc

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/shmring/shmring/internal/errs"
)

// inspect runs f, a read (or an operator's write) of the segment made on an
// inspection path: Stats, and package ops (Peek, Doctor, Slot,
// ResetHighWater, the policy and pressure settings, through
// internal/handle), and through them ops.List, the Prometheus collectors
// and every ringctl command. A process that can write the segment file can
// truncate it after we mapped it: an access past the new end raises SIGBUS,
// and an access to what is left reads a ring that is no longer whole. So
// inspect compares the file's size with its header's before f (and after,
// in case it shrank meanwhile) and turns a memory fault inside f into an
// error (see guard). Each failure is ErrCorrupt, says what happened and what
// to do, and is marked unreadable, which matches errs.ErrFault (ops.Doctor
// stops at it rather than list it as one problem among others).
//
// The write and read hot paths do not run under inspect: a deferred recover
// per message would cost more than the protection is worth there; a
// producer or consumer whose segment is truncated under it mid-transfer
// dies with SIGBUS (docs/security.md says so, and how to avoid it).
func (r *Ring) inspect(f func() error) error {
	if err := r.seg.CheckSize(); err != nil {
		return unreadable{fmt.Errorf("ipc: %w", err)}
	}
	if err := r.guard(f); err != nil {
		return err
	}
	if err := r.seg.CheckSize(); err != nil {
		return unreadable{fmt.Errorf("ipc: %w", err)}
	}
	return nil
}

// guard runs f with memory faults turned into ErrCorrupt instead of a
// crash: debug.SetPanicOnFault makes the Go runtime deliver a SIGBUS in
// Go code as a panic to the faulting goroutine, which guard recovers. The
// error says why the page was missing when the file's size tells: it was
// truncated (to what, from what); else the page could not be supplied (a
// hole punched in the file while its tmpfs or memory cgroup is full).
func (r *Ring) guard(f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if p := recover(); p != nil {
			if _, fault := p.(interface{ Addr() uintptr }); !fault {
				panic(p)
			}
			if serr := r.seg.CheckSize(); serr != nil {
				err = unreadable{fmt.Errorf("ipc: reading the segment faulted (%v): %w", p, serr)}
				return
			}
			err = unreadable{fmt.Errorf("ipc: %q: reading the segment faulted (%v) although the file still has its full size: "+
				"the kernel could not supply a page of it (a hole punched in the file while its file system or memory cgroup is full?), "+
				"or it was truncated and grown back; stop its producers and consumer, then remove and recreate it: %w", r.Path(), p, ErrCorrupt)}
		}
	}()
	return f()
}

// unreadable marks an error of inspect: the segment could not be read at
// all. It wraps the error unchanged (its text too) and also matches
// errs.ErrFault, which package ops exports as ops.ErrFault: callers test
// errors.Is, never the text.
type unreadable struct{ error }

func (u unreadable) Unwrap() error { return u.error }

// Is makes errors.Is(err, errs.ErrFault) hold.
func (u unreadable) Is(target error) bool { return target == errs.ErrFault }

// isUnreadable reports whether err came from inspect finding the segment
// truncated or faulting.
func isUnreadable(err error) bool { return errors.Is(err, errs.ErrFault) }
