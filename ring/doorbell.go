// The doorbell: line 15 of a ring's control block, and the layout of a
// doorbell file, the one futex word a wait set (package waitset) sleeps on
// for many rings. This package places the words and validates a doorbell
// file's header; the protocol over them (who stores what, when a producer
// rings) is package ipc's and waitset's, written in docs/layout.md, "Line
// 15: doorbell" and "Doorbell files", from this file.

package ring

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// Line 15: the doorbell words. Every word is a u64 accessed with 64-bit
// atomics. Bytes 24..127 are reserved (zero).
const (
	offBell      = 15 * LineSize
	offBellID    = offBell + 0  // u64: the doorbell's id (0: none); the consumer-role holder stores it
	offBellWakes = offBell + 8  // u64: FUTEX_WAKEs of the doorbell made by producers (atomic add)
	offBellFails = offBell + 16 // u64: doorbells a producer could not open or validate (atomic add)
	offBellEnd   = offBell + 24
)

// The doorbell file: DoorbellSize bytes, a header on its first line and its
// futex line on the second (its own cache line: producers of every member
// ring write it).
const (
	// DoorbellSize is a doorbell file's exact size.
	DoorbellSize = 4096
	// DoorbellMagic is a doorbell file's first 8 bytes.
	DoorbellMagic = "SHMRDBEL"
	// DoorbellVersion is the doorbell layout version this build writes and
	// reads.
	DoorbellVersion = 1

	bellMagic   = 0             // 8 bytes: DoorbellMagic
	bellVersion = 8             // u32: DoorbellVersion
	bellID      = 16            // u64: the id, as in the file's name and line 15
	bellLine    = 64            // the futex line
	bellSeq     = bellLine + 0  // u32: the futex word; a waker adds 1 before FUTEX_WAKE
	bellParked  = bellLine + 4  // u32: 1 while the set may sleep; the set stores 1, a waker CASes 1 -> 0
	bellWakes   = bellLine + 8  // u64: FUTEX_WAKEs made on seq (atomic add)
	bellEnd     = bellLine + 16 // bytes 80..4095 reserved, zero
)

// Compile-time checks (see layout.go): line 15 after the bridge blocks and
// inside the control block; the doorbell's futex line on its own line.
const (
	_ = uint(-(offBell % LineSize))
	_ = uint(offBell - (offBridgeIn + LineSize))
	_ = uint(LineSize - (offBellEnd - offBell))
	_ = uint(ControlSize - (offBell + LineSize))
	_ = uint(-(bellLine % 64))
	_ = uint(-(bellWakes % 8))
	_ = uint(DoorbellSize - bellEnd)
)

// DoorbellLine is line 15's words (docs/layout.md, "Line 15: doorbell").
type DoorbellLine struct {
	// ID names the doorbell file (0: none). Only the consumer-role holder
	// stores it: a wait set stores its doorbell's id at Join and 0 at
	// Leave (and its value again at a sleep that finds another: a
	// co-tenant's forgery); any consumer that takes the role of a ring with FlagDoorbell
	// stores 0 first. Producers load it (untrusted: they build the file's
	// path from it and validate the file, never trusting it further).
	ID *atomic.Uint64
	// Wakes counts the FUTEX_WAKEs of the doorbell producers made for this
	// ring (display).
	Wakes *atomic.Uint64
	// Failures counts the times a producer could not open or validate the
	// doorbell named by ID and woke line 5 instead (display).
	Failures *atomic.Uint64
}

// Doorbell reports whether the ring has FlagDoorbell.
func (r *Ring) Doorbell() bool { return r.bell }

// DoorbellLine returns line 15's words.
func (r *Ring) DoorbellLine() DoorbellLine {
	return DoorbellLine{
		ID:       word(r.region, offBellID),
		Wakes:    word(r.region, offBellWakes),
		Failures: word(r.region, offBellFails),
	}
}

// Bell is a doorbell file's futex line: the words of a WaitLine without
// its parks counter.
type Bell struct {
	// Seq is the futex word the set sleeps on: a waker adds 1, then wakes.
	Seq *atomic.Uint32
	// Parked is 1 while the set may sleep (the set stores it); a waker
	// clears it by compare-and-swap 1 -> 0 before it wakes.
	Parked *atomic.Uint32
	// Wakes counts the FUTEX_WAKEs made on Seq.
	Wakes *atomic.Uint64
}

// FormatDoorbell writes a doorbell file's header for id into mem (at least
// DoorbellSize bytes, 8-aligned, zero: a new file). The futex line starts
// at zero.
func FormatDoorbell(mem []byte, id uint64) error {
	if len(mem) < DoorbellSize || !aligned(mem) {
		return fmt.Errorf("ring: a doorbell needs %d 8-aligned bytes, got %d", DoorbellSize, len(mem))
	}
	copy(mem[bellMagic:], DoorbellMagic)
	binary.LittleEndian.PutUint32(mem[bellVersion:], DoorbellVersion)
	binary.LittleEndian.PutUint64(mem[bellID:], id)
	return nil
}

// AttachDoorbell validates the doorbell file mapped in mem (untrusted: any
// process that can write the file may have written anything) against the
// id its opener expects, most specific first, and returns its futex line.
// A failed check wraps ErrCorrupt (size, magic, id) or ErrIncompatible
// (version).
func AttachDoorbell(mem []byte, id uint64) (Bell, error) {
	if len(mem) != DoorbellSize || !aligned(mem) {
		return Bell{}, fmt.Errorf("ring: a doorbell is %d bytes, this one %d: %w", DoorbellSize, len(mem), ErrCorrupt)
	}
	if string(mem[bellMagic:bellMagic+8]) != DoorbellMagic {
		return Bell{}, fmt.Errorf("ring: doorbell magic is %q, want %q (not a doorbell): %w", mem[bellMagic:bellMagic+8], DoorbellMagic, ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(mem[bellVersion:]); v != DoorbellVersion {
		return Bell{}, fmt.Errorf("ring: doorbell version is %d, this build reads %d: %w", v, DoorbellVersion, ErrIncompatible)
	}
	if got := binary.LittleEndian.Uint64(mem[bellID:]); got != id {
		return Bell{}, fmt.Errorf("ring: doorbell id is %016x, its name says %016x: %w", got, id, ErrCorrupt)
	}
	return Bell{Seq: word32(mem, bellSeq), Parked: word32(mem, bellParked), Wakes: word(mem, bellWakes)}, nil
}
