// Package ops is a THROWAWAY STUB of the operator tools package (issue 14)
// so that metrics, bench and fuzz compile on this branch: the exported
// signatures of H4's package ops (branch w-ops, which follows
// /work/notes/api.md's "Package ops" section), every body a panic. The
// lead drops this commit at merge.
package ops

import (
	"errors"
	"time"

	"github.com/shmring/shmring/ipc"
)

// Sentinel errors (stub values).
var (
	// ErrReadOnly: a write asked of a read-only ring (stub).
	ErrReadOnly = errors.New("stub: read-only")
	// ErrFault: the segment's memory could not be read (stub).
	ErrFault = errors.New("stub: fault")
	// ErrInvalidPolicy: no such policy, or not for that side (stub).
	ErrInvalidPolicy = errors.New("stub: invalid policy")
)

// Diagnosis is what Doctor found (stub).
type Diagnosis struct {
	Problems      []string
	DeadProducers []int
	Stuck         bool
	Pending       int
	Repaired      int
}

// Healthy reports whether Doctor found nothing wrong (stub).
func (d Diagnosis) Healthy() bool { panic("stub") }

// Doctor checks a ring, and with repair skips dead reservations (stub).
func Doctor(r *ipc.Ring, repair bool) (Diagnosis, error) { panic("stub") }

// Peek returns up to max pending records, copied (stub).
func Peek(r *ipc.Ring, max int) ([]ipc.Record, error) { panic("stub") }

// Entry is one entry of List (stub; was ipc.RingInfo).
type Entry struct {
	Name         string
	Path         string
	Stats        ipc.Stats
	Err          error
	Creating     bool
	Ring         string
	CreatorAlive bool
}

// List lists the rings in dir (stub).
func List(dir string, opts ...ipc.Option) ([]Entry, error) { panic("stub") }

// Policy is a wait-mode override word's value (stub).
type Policy uint8

// The segment's numbers (stub).
const (
	Spin       Policy = 1
	Drop       Policy = 2
	Backoff    Policy = 3
	Yield      Policy = 4
	Park       Policy = 5
	Block      Policy = 6
	Hybrid     Policy = 7
	Overflow   Policy = 8
	DropOldest Policy = 9
)

// String names the policy (stub).
func (p Policy) String() string { panic("stub") }

// ParsePolicy returns the policy called s (stub).
func ParsePolicy(s string) (Policy, error) { panic("stub") }

// SetPolicy sets the override words (stub).
func SetPolicy(r *ipc.Ring, producers, consumer Policy) error { panic("stub") }

// ResetHighWater starts a new high-watermark period (stub).
func ResetHighWater(r *ipc.Ring) error { panic("stub") }

// SetPressureLevels sets the pressure levels (stub).
func SetPressureLevels(r *ipc.Ring, high, low uint64) error { panic("stub") }

// SetTargetDelay sets the adaptive level (stub).
func SetTargetDelay(r *ipc.Ring, target, interval time.Duration) error { panic("stub") }

// SegmentHeader is ops' copy of the segment header (stub).
type SegmentHeader struct {
	Version      uint32
	BodySize     uint64
	TotalSize    uint64
	CreatedNanos int64
	CreatorPID   uint32
	CreatorUID   uint32
}

// Header returns the ring's segment header (stub).
func Header(r *ipc.Ring) SegmentHeader { panic("stub") }

// Slot returns slot i's figures (stub).
func Slot(r *ipc.Ring, i int) (ipc.SlotStats, error) { panic("stub") }
