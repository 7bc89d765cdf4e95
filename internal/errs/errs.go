// Package errs holds the sentinel errors shared by ring, shm and ipc, so that
// errors.Is(err, ipc.ErrCorrupt) holds whichever layer found the damage. Each
// public package re-exports the ones it returns; users never import this one.
package errs

import (
	"errors"
	"io/fs"
	"os"
)

var (
	// Corrupt is returned when memory or a file written by another party
	// violates an invariant of the layout: the region must not be used further.
	Corrupt = errors.New("corrupt segment")
	// Incompatible is returned when a segment or ring was written by a
	// different layout version, byte order or kind than this code reads.
	Incompatible = errors.New("incompatible segment")
	// Full is returned when a record does not fit in the free space of a ring.
	Full = errors.New("ring full")
	// TooLarge is returned when a message exceeds the ring's maximum message size.
	TooLarge = errors.New("message too large")
	// Closed is returned by operations on a closed producer, consumer or segment.
	Closed = os.ErrClosed
	// Exist is returned when creating a segment whose name is taken.
	Exist = fs.ErrExist
	// NotExist is returned when opening or removing a segment that does not exist.
	NotExist = fs.ErrNotExist
	// Permission is returned when the caller may not open, create or trust a segment.
	Permission = fs.ErrPermission
	// Timeout is returned when a deadline passes before an operation completes.
	Timeout = os.ErrDeadlineExceeded
	// Busy is returned when a role that only one party may hold (the SPSC
	// producer, the consumer) is already held.
	Busy = errors.New("role already held")
)
