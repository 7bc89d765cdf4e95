package shm

import "github.com/shmring/shmring/internal/errs"

// General sentinels, shared with packages ring and ipc (errors.Is(err,
// shm.ErrCorrupt) and errors.Is(err, ipc.ErrCorrupt) are the same test).
var (
	// ErrExist is returned by Create when the name is taken (by a segment,
	// any other file, or a symbolic link, which is never followed).
	ErrExist = errs.ErrExist
	// ErrNotExist is returned by Open and Remove when there is no such segment.
	ErrNotExist = errs.ErrNotExist
	// ErrPermission is returned when the caller may not create or open the
	// file, or does not trust its owner or mode.
	ErrPermission = errs.ErrPermission
	// ErrCorrupt is returned when a file's header is damaged or inconsistent.
	ErrCorrupt = errs.ErrCorrupt
	// ErrIncompatible is returned when a segment was written with another
	// layout version or byte order.
	ErrIncompatible = errs.ErrIncompatible
	// ErrClosed is returned by operations on a closed Segment.
	ErrClosed = errs.ErrClosed
)

// Specific sentinels: each also matches the general one named in its comment.
var (
	// ErrBadName is returned for an empty name, "." or "..", a name with a
	// NUL byte, a path element "..", or a name or path too long; by Create
	// also for a name that is not printable (a control, format or invisible
	// character, invalid UTF-8) or has the form of a temporary file of
	// Create; by RemoveLeftover for a path not named as such a file.
	ErrBadName error = &sentinel{"invalid segment name", nil}
	// ErrSymlink is returned when the segment path is a symbolic link:
	// shmring never follows one. Matches ErrPermission.
	ErrSymlink error = &sentinel{"segment path is a symbolic link", errs.ErrPermission}
	// ErrNotRegular is returned when the path is a directory, device or
	// other non-regular file. Matches ErrCorrupt.
	ErrNotRegular error = &sentinel{"not a regular file", errs.ErrCorrupt}
	// ErrTooSmall is returned when a file is smaller than a segment header,
	// or smaller than its header says. Matches ErrCorrupt.
	ErrTooSmall error = &sentinel{"file too small", errs.ErrCorrupt}
	// ErrBadMagic is returned when a file does not start with the segment
	// magic: it is not a shmring segment. Matches ErrCorrupt.
	ErrBadMagic error = &sentinel{"bad magic: not a shmring segment", errs.ErrCorrupt}
	// ErrByteOrder is returned when a segment was written on a machine of
	// the other byte order. Matches ErrIncompatible.
	ErrByteOrder error = &sentinel{"byte order mismatch", errs.ErrIncompatible}
	// ErrVersion is returned when a segment has another layout version.
	// Matches ErrIncompatible.
	ErrVersion error = &sentinel{"unsupported layout version", errs.ErrIncompatible}
	// ErrChecksum is returned when the header's immutable fields do not
	// match their checksum. Matches ErrCorrupt.
	ErrChecksum error = &sentinel{"header checksum mismatch", errs.ErrCorrupt}
	// ErrGeometry is returned when the header's sizes do not add up or do
	// not match the file. Matches ErrCorrupt.
	ErrGeometry error = &sentinel{"inconsistent segment sizes", errs.ErrCorrupt}
	// ErrNoSpace is returned by Create when the file system (usually the
	// /dev/shm tmpfs) cannot hold the segment. Nothing is left behind.
	ErrNoSpace error = &sentinel{"no space for the segment", nil}
)

// sentinel is a specific error that also matches a general one.
type sentinel struct {
	msg  string
	kind error
}

func (s *sentinel) Error() string { return s.msg }
func (s *sentinel) Unwrap() error { return s.kind }
