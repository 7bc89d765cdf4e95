// Package shm owns segment files: a header page that identifies and
// describes the segment, then a body that callers (package ipc) fill with a
// ring. It knows nothing of rings.
//
// [Create] never exposes a half-made segment: it builds the file under a
// temporary name (O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, the exact mode asked
// for, pages allocated up front) and hard-links it to its name only when
// initialised. [Open] checks the file's type, owner, mode, header and size
// before mapping it; each refusal wraps a specific sentinel such as
// [ErrChecksum] or [ErrVersion] that also matches a general one
// ([ErrCorrupt], [ErrIncompatible]).
//
// Names: a bare name ("orders") lives in /dev/shm, or in the directory of
// the [Dir] option or of $SHMRING_DIR; a name with a slash is a path.
//
// A creator killed mid-way leaves its temporary file, ".NAME.creating-" and
// 16 hex digits; it holds a lock on that file while it lives, so that
// [Leftovers] tells a create in progress from a leftover, and
// [RemoveLeftover] removes only the latter. [Create] refuses names that are
// not printable (control, format or invisible characters, invalid UTF-8).
// A segment passed as a descriptor ([ReceiveFD], [FromFile]) must be a
// memfd sealed with [RequiredSeals]. [Segment.CheckSize] tells whether the
// file was truncated under the mapping.
//
// [Segment.Lock] takes an open-file-description byte-range lock, which the
// kernel releases when its holder dies: package ipc builds role ownership
// and liveness on it.
package shm
