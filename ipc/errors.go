package ipc

import (
	"errors"

	"github.com/shmring/shmring/internal/errs"
)

// Sentinel errors, the same values as in packages ring and shm, so one
// errors.Is test holds whichever layer found the condition. Conditions the
// standard library names are its own values: a name taken is
// [io/fs.ErrExist], no such ring [io/fs.ErrNotExist], not allowed
// [io/fs.ErrPermission], an argument or Config no call can accept
// [io/fs.ErrInvalid], and a wait ended by a context deadline matches
// [context.DeadlineExceeded].
var (
	// ErrFull is returned when a message does not fit and the producer
	// does not wait (TryWrite, Full Drop, a hook that gave up), or a
	// WriteBatch that does not wait left some out.
	ErrFull = errs.ErrFull
	// ErrTooLarge is returned when a message exceeds the ring's maximum
	// message size (Stats.MaxMessage); nothing is written.
	ErrTooLarge = errs.ErrTooLarge
	// ErrClosed is returned by operations on a closed Ring, Producer or
	// Consumer, including a Producer or Consumer whose Ring was closed, and
	// by a call that was waiting when its Ring was closed. The same value
	// as os.ErrClosed.
	ErrClosed = errs.ErrClosed
	// ErrCorrupt is returned when the segment or ring is damaged; stop using
	// it, inspect it with ringctl stat or doctor, and recreate it.
	ErrCorrupt = errs.ErrCorrupt
	// ErrIncompatible is returned when the segment was made by another
	// layout version, byte order or kind.
	ErrIncompatible = errs.ErrIncompatible
	// ErrBusy is returned when the ring already has a consumer, an SPSC
	// ring already has a producer, or every MPSC slot asked for is held, in
	// this or another process.
	ErrBusy = errs.ErrBusy
	// ErrPeerDead is matched by the error of a wait when the other side
	// has been gone (no live consumer, or no live producer) for
	// Wait.PeerTimeout, 1 s by default: nobody is left to make room or to
	// write. The error names the ring, the side that is gone and for how
	// long. Start the other side, or raise Wait.PeerTimeout for processes
	// that start far apart; retry once a peer is back. A consumer also
	// gets it once a producer that finished has gone and its messages are
	// delivered (see the package doc, "Two processes").
	ErrPeerDead = errors.New("peer gone")
)
