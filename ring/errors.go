package ring

import (
	"errors"
	"fmt"

	"github.com/shmring/shmring/internal/errs"
)

var (
	// ErrFull is returned by TryWrite, Claim and WriteBatch when the record
	// does not fit in the free space. It is an expected outcome, not damage.
	ErrFull = errs.ErrFull
	// ErrTooLarge is returned when a message exceeds the ring's maximum
	// message size; nothing is written.
	ErrTooLarge = errs.ErrTooLarge
	// ErrCorrupt is returned when the region violates the layout (a position
	// or length out of range, an unknown record type). The producer or
	// consumer that returns it stays failed: the ring must be inspected
	// (ringctl stat) and recreated.
	ErrCorrupt = errs.ErrCorrupt
	// ErrIncompatible is returned by Attach when the region holds a ring of
	// another layout version or kind.
	ErrIncompatible = errs.ErrIncompatible
	// ErrInvalid is returned when a nil callback is passed (ReadBatch,
	// TryRead, Recover); nothing is read or changed.
	ErrInvalid = errs.ErrInvalid
	// ErrClaimPending is returned when a write or claim is attempted while a
	// claim is outstanding; Commit or Abort it first.
	ErrClaimPending = errors.New("ring: a claim is outstanding; Commit or Abort it first")
	// ErrNoClaim is returned by Commit when there is no outstanding claim
	// (none was made, or it was committed or aborted already). It matches
	// ErrInvalid (fs.ErrInvalid): a misuse, nothing is written.
	ErrNoClaim = fmt.Errorf("ring: no outstanding claim to commit; call Claim first (a claim is committed or aborted once): %w", ErrInvalid)
)

// Errors for a nil callback: values, so a caller that checks for them in a
// loop allocates nothing.
var (
	errNilRead    = fmt.Errorf("ring: read: the callback is nil; pass a function that takes each message: %w", ErrInvalid)
	errNotFast    = fmt.Errorf("ring: EndBatch: the consumer does not read through the fast path (Fast: a plain ring, reads not held); read with ReadBatch: %w", ErrInvalid)
	errNoLiveness = fmt.Errorf("ring: recover: the ring was attached without a Liveness, so no producer is known dead; attach with AttachWithLiveness: %w", ErrInvalid)
)

// writtenRemedy ends an error for a word that only this process writes
// found changed: what happened and what to do.
const writtenRemedy = "another process wrote the segment: stop every process using it, run ringctl doctor on it, then remove and recreate it"

// corruptf reports damage found at a region offset.
func corruptf(off uint64, format string, args ...any) error {
	return fmt.Errorf("ring: %s at region offset %d: %w", fmt.Sprintf(format, args...), off, ErrCorrupt)
}
