// Package ops is a throwaway stub of the operator-tools package (issue 14),
// exported signatures only, so that ipc's converted tests compile on this
// branch. The real package is written on another branch; drop this commit.
package ops

import (
	"errors"
	"time"

	"github.com/shmring/shmring/ipc"
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

// Doctor checks a ring (stub).
func Doctor(r *ipc.Ring, repair bool) (Diagnosis, error) { panic("stub") }

// Peek returns pending records, copied (stub).
func Peek(r *ipc.Ring, max int) ([]ipc.Record, error) { panic("stub") }

// Entry is one entry of List (stub).
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

// Policy is a wait-mode override, the segment's numbers (stub).
type Policy uint8

// The segment's override numbers (stub).
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

// String returns the policy's name (stub).
func (p Policy) String() string { panic("stub") }

// ParsePolicy returns the policy called s (stub).
func ParsePolicy(s string) (Policy, error) { panic("stub") }

// SetPolicy overrides the ring's wait modes (stub).
func SetPolicy(r *ipc.Ring, producers, consumer Policy) error { panic("stub") }

// ResetHighWater starts a new high-watermark period (stub).
func ResetHighWater(r *ipc.Ring) error { panic("stub") }

// SetPressureLevels sets the pressure levels (stub).
func SetPressureLevels(r *ipc.Ring, high, low uint64) error { panic("stub") }

// SetTargetDelay sets the adaptive pressure level (stub).
func SetTargetDelay(r *ipc.Ring, target, interval time.Duration) error { panic("stub") }

// SegmentHeader is the segment's decoded header (stub; api.md names both
// this type and the function Header, which Go does not allow).
type SegmentHeader struct {
	Version      uint32
	BodySize     uint64
	TotalSize    uint64
	CreatedNanos int64
	CreatorPID   uint32
	CreatorUID   uint32
}

// Header returns the segment's header (stub).
func Header(r *ipc.Ring) SegmentHeader { panic("stub") }

// Slot returns MPSC slot i's counters and owner (stub).
func Slot(r *ipc.Ring, i int) (ipc.SlotStats, error) { panic("stub") }

// ErrReadOnly is returned by an operation that writes on a ring opened
// read-only (stub).
var ErrReadOnly = errors.New("ops: stub")

// ErrFault marks a memory fault met while reading the segment (stub).
var ErrFault = errors.New("ops: stub fault")
