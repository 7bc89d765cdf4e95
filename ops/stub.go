// Package ops is a THROWAWAY STUB (branch w-tests1) so that the converted
// ipc tests compile before H4's real package ops is merged: exported
// signatures only, every body panics. The lead drops this commit at merge.
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

// Doctor checks, and with repair repairs, a ring (stub).
func Doctor(r *ipc.Ring, repair bool) (Diagnosis, error) { panic("stub") }

// Peek returns up to max pending records, copied (stub).
func Peek(r *ipc.Ring, max int) ([]ipc.Record, error) { panic("stub") }

// Entry is one ring of List (stub).
type Entry struct{}

// List lists the rings in dir (stub).
func List(dir string, opts ...ipc.Option) ([]Entry, error) { panic("stub") }

// Policy is a wait-mode override as the segment stores it (stub).
type Policy uint8

// The segment's policy numbers (stub).
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

// ErrInvalidPolicy is returned for a policy a side cannot follow (stub).
var ErrInvalidPolicy = errors.New("stub")

// ErrReadOnly is returned for a write on a ring opened read-only (stub).
var ErrReadOnly = errors.New("stub")

// SetPolicy overrides the producers' and consumer's policies (stub).
func SetPolicy(r *ipc.Ring, producers, consumer Policy) error { panic("stub") }

// ResetHighWater starts a new high-watermark period (stub).
func ResetHighWater(r *ipc.Ring) error { panic("stub") }

// SetPressureLevels sets the pressure levels (stub).
func SetPressureLevels(r *ipc.Ring, high, low uint64) error { panic("stub") }

// SetTargetDelay sets the adaptive level (stub).
func SetTargetDelay(r *ipc.Ring, target, interval time.Duration) error { panic("stub") }

// Slot returns producer slot i's words, with Alive (stub).
func Slot(r *ipc.Ring, i int) (ipc.SlotStats, error) { panic("stub") }
