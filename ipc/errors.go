package ipc

import "github.com/shmring/shmring/internal/errs"

// Sentinel errors, the same values as in packages ring and shm, so one
// errors.Is test holds whichever layer found the condition.
var (
	// ErrFull is returned when a message does not fit and the policy does
	// not wait (Drop, TryWrite), or a WriteBatch under Drop left some out.
	ErrFull = errs.ErrFull
	// ErrTooLarge is returned when a message exceeds the ring's maximum
	// message size; nothing is written.
	ErrTooLarge = errs.ErrTooLarge
	// ErrClosed is returned by operations on a closed Ring, Producer or
	// Consumer, including a Producer or Consumer whose Ring was closed, and
	// by a Write or Read that was waiting when its Ring was closed.
	ErrClosed = errs.ErrClosed
	// ErrCorrupt is returned when the segment or ring is damaged; stop using
	// it, inspect it with ringctl stat, and recreate it.
	ErrCorrupt = errs.ErrCorrupt
	// ErrIncompatible is returned when the segment was made by another
	// layout version, byte order or kind.
	ErrIncompatible = errs.ErrIncompatible
	// ErrExist is returned by Create when the name is taken.
	ErrExist = errs.ErrExist
	// ErrNotExist is returned by Open when there is no such ring.
	ErrNotExist = errs.ErrNotExist
	// ErrPermission is returned when the caller may not open or create the
	// segment, or does not trust its owner.
	ErrPermission = errs.ErrPermission
	// ErrTimeout is returned when a deadline passes while waiting.
	ErrTimeout = errs.ErrTimeout
	// ErrInvalid is returned when a nil callback or context is passed (Read,
	// ReadBatch, TryRead, TryReadBatch, WriteContext, WriteSeq, Retry);
	// nothing is read, written or waited for. The same value as
	// io/fs.ErrInvalid.
	ErrInvalid = errs.ErrInvalid
	// ErrBusy is returned when the ring already has a consumer, or an SPSC
	// ring already has a producer, in this or another process.
	ErrBusy = errs.ErrBusy
)
