package ops

import (
	"errors"

	"github.com/shmring/shmring/internal/errs"
)

// Sentinel errors of the operator tools. Test them with errors.Is: no
// error of ops (or of ipc, shm and ring underneath) needs matching on its
// text. The errors of package ipc (ipc.ErrCorrupt, ipc.ErrClosed, ...)
// and io/fs (fs.ErrNotExist, fs.ErrPermission, fs.ErrInvalid) keep their
// meaning here.
var (
	// ErrReadOnly is returned when an operation that writes the segment
	// (SetPolicy, ResetHighWater, SetPressureLevels, SetTargetDelay, the
	// repair of Doctor) is asked of a ring opened with ipc.WithReadOnly;
	// nothing is changed. Open the ring without WithReadOnly (as a user
	// who may write its file) to change it. A Producer or Consumer of a
	// read-only ring fails with an error matching it too.
	ErrReadOnly = errs.ErrReadOnly

	// ErrFault is matched, together with ipc.ErrCorrupt, by the error of
	// an inspection that could not read the segment's memory at all: its
	// file was truncated (or grown) after this process mapped it, or
	// reading a page of it faulted (SIGBUS: a hole punched in the file
	// while its file system or memory cgroup is full). The error says
	// which, and to what size. Nothing was read, so nothing was diagnosed
	// (Doctor returns it rather than a Diagnosis). Stop the ring's
	// producers and consumer, remove and recreate it, and keep it where
	// only trusted users can write it (or in a sealed memfd, which cannot
	// be truncated): every process still using it crashes with SIGBUS when
	// it touches the missing part. ipc's Stats reports the same error.
	ErrFault = errs.ErrFault

	// ErrInvalidPolicy is returned by ParsePolicy for a name that is not a
	// policy, and by SetPolicy for a policy that does not exist or does
	// not apply to the side it was given for (the error names the side): a
	// consumer only waits (it cannot drop or overflow), and drop-oldest
	// needs a ring created with ipc.Config.DropOldest. Nothing is changed;
	// use one of the names the error lists.
	ErrInvalidPolicy = errors.New("invalid policy")
)
