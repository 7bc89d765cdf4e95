// Package errs holds the sentinel errors shared by ring, shm, ipc and ops, so that
// errors.Is(err, ipc.ErrCorrupt) holds whichever layer found the damage. Each
// public package re-exports the ones it returns; users never import this one.
package errs

import (
	"errors"
	"io/fs"
	"os"
)

var (
	// ErrCorrupt is returned when memory or a file written by another party
	// violates an invariant of the layout: the region must not be used further.
	ErrCorrupt = errors.New("corrupt segment")
	// ErrIncompatible is returned when a segment or ring was written by a
	// different layout version, byte order or kind than this code reads.
	ErrIncompatible = errors.New("incompatible segment")
	// ErrFull is returned when a record does not fit in the free space of a ring.
	ErrFull = errors.New("ring full")
	// ErrTooLarge is returned when a message exceeds the ring's maximum message size.
	ErrTooLarge = errors.New("message too large")
	// ErrClosed is returned by operations on a closed producer, consumer or segment.
	ErrClosed = os.ErrClosed
	// ErrExist is returned when creating a segment whose name is taken.
	ErrExist = fs.ErrExist
	// ErrNotExist is returned when opening or removing a segment that does not exist.
	ErrNotExist = fs.ErrNotExist
	// ErrPermission is returned when the caller may not open, create or trust a segment.
	ErrPermission = fs.ErrPermission
	// ErrBusy is returned when a role that only one party may hold (the SPSC
	// producer, the consumer) is already held.
	ErrBusy = errors.New("role already held")
	// ErrInvalid is returned when the caller passes an argument no call can
	// accept (a nil callback or context).
	ErrInvalid = fs.ErrInvalid
	// ErrReadOnly is returned when an operation that writes the segment (a
	// role lock, an operator's setting, a repair) is asked of a segment
	// mapped read-only. It matches fs.ErrPermission too (errors.Is), so a
	// caller of ipc alone can test it without importing ops.
	ErrReadOnly error = readOnlyError{}
	// ErrFault is matched (alongside ErrCorrupt) by the error of an
	// inspection that could not read the segment's memory: its file was
	// truncated or grown after it was mapped, or a page of it faulted
	// (SIGBUS) when read. ipc's fault guard marks its errors with it; ops
	// re-exports it.
	ErrFault = errors.New("segment memory unreadable")
)

// readOnlyError is ErrReadOnly's type: a sentinel that is also
// fs.ErrPermission for errors.Is, with a text of its own.
type readOnlyError struct{}

func (readOnlyError) Error() string { return "segment is open read-only" }

// Is makes errors.Is(ErrReadOnly, fs.ErrPermission) hold.
func (readOnlyError) Is(target error) bool { return target == fs.ErrPermission }
