package ops

import (
	"fmt"
	"math"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ipc"
)

// ResetHighWater starts a new high-watermark period at the ring's current
// depth (ringctl reset). It returns ErrReadOnly on a ring opened
// read-only, and ipc.ErrCorrupt with ErrFault if the segment cannot be read.
func ResetHighWater(r *ipc.Ring) error {
	h, err := enter("reset high watermark", r)
	if err != nil {
		return err
	}
	defer h.Leave()
	if err := writable("reset high watermark", h); err != nil {
		return err
	}
	return h.Inspect(func() error { h.R.ResetHighWater(); return nil })
}

// SetPressureLevels sets the depths, in bytes, at which the ring's pressure
// (ipc.Pressure.Depth) rises (high) and falls again (low <= high <=
// capacity): hysteresis, so producers that slow down at the high level do
// not flap. high 0 turns pressure off. Any process that may write the
// segment may call it; producers follow at once. Levels out of range
// return an error matching fs.ErrInvalid; a read-only ring, ErrReadOnly.
func SetPressureLevels(r *ipc.Ring, high, low uint64) error {
	h, err := enter("set pressure levels", r)
	if err != nil {
		return err
	}
	defer h.Leave()
	if err := writable("set pressure levels", h); err != nil {
		return err
	}
	return h.Inspect(func() error {
		if err := h.R.SetPressureLevels(high, low); err != nil {
			return fmt.Errorf("ops: %q: %w: %w", h.Seg.Path(), err, errs.ErrInvalid)
		}
		return nil
	})
}

// SetTargetDelay sets the adaptive pressure level (ipc.Pressure.Delay) of a
// ring created with timestamps: pressure rises when every record's
// queueing delay stays above target for interval, and falls at the first
// record under target. target 0 turns it off. A target on a ring without
// timestamps, or a negative duration, returns an error matching
// fs.ErrInvalid; a read-only ring, ErrReadOnly.
func SetTargetDelay(r *ipc.Ring, target, interval time.Duration) error {
	h, err := enter("set target delay", r)
	if err != nil {
		return err
	}
	defer h.Leave()
	if err := writable("set target delay", h); err != nil {
		return err
	}
	return h.Inspect(func() error {
		if err := h.R.SetTargetDelay(target, interval); err != nil {
			return fmt.Errorf("ops: %q: %w: %w", h.Seg.Path(), err, errs.ErrInvalid)
		}
		return nil
	})
}

// SetWindow narrows the bytes producers may fill to window (credit, as
// reactive streams' request(n)), or widens it again; 0 gives them the whole
// capacity. A window smaller than a message stops that message until the
// window widens. Producers treat the window as the capacity from their next
// write; parked producers are woken to see a wider one. Any process that
// may write the segment may call it: the consumer granting credit, or an
// operator; the running consumer does not restore a value of its own.
// A read-only ring returns ErrReadOnly.
func SetWindow(r *ipc.Ring, window uint64) error {
	h, err := enter("set window", r)
	if err != nil {
		return err
	}
	defer h.Leave()
	if err := writable("set window", h); err != nil {
		return err
	}
	return h.Inspect(func() error {
		h.R.SetWindow(window)
		// Line 6's waking rule (docs/layout.md, "Waking"): bump, then
		// wake if a producer said it may be asleep.
		wp := h.R.ProducerWaitLine()
		wp.Seq.Add(1)
		if wp.Parked.Load() != 0 && wp.Parked.CompareAndSwap(1, 0) {
			_, _ = futex.Wake(wp.Seq, math.MaxInt32)
			wp.Wakeups.Add(1)
		}
		return nil
	})
}

// SegmentHeader is the segment's header as ringctl stat shows it: what
// the creator wrote, validated when the ring was opened and immutable
// since. (Not named Header: that is the function that returns it.)
type SegmentHeader struct {
	Version      uint32 // the segment header's layout version
	BodySize     uint64 // bytes after the header: the ring's control block, slots and data area
	TotalSize    uint64 // the file's size: header and body
	CreatedNanos int64  // creation time, Unix nanoseconds
	CreatorPID   uint32 // the creating process, in its PID namespace
	CreatorUID   uint32 // the creating user
}

// Header returns r's segment header (creation time, creator, sizes). It
// reads no shared memory (the header was copied and validated by Open), so
// it works on a ring opened read-only and after the ring's Close.
func Header(r *ipc.Ring) SegmentHeader {
	h := handle.Of(r).Seg.Header()
	return SegmentHeader{Version: h.Version, BodySize: h.BodySize, TotalSize: h.TotalSize,
		CreatedNanos: h.CreatedNanos, CreatorPID: h.CreatorPID, CreatorUID: h.CreatorUID}
}

// Slot returns the counters, owner and liveness of MPSC producer slot i
// (0 <= i < Stats().Slots), whether or not it was ever used (Stats lists
// only the slots that were). An SPSC ring has no slots. A slot out of
// range returns an error matching fs.ErrInvalid; a segment that cannot be
// read, ipc.ErrCorrupt with ErrFault; after the ring's Close, ipc.ErrClosed.
func Slot(r *ipc.Ring, i int) (ipc.SlotStats, error) {
	h, err := enter("slot", r)
	if err != nil {
		return ipc.SlotStats{}, err
	}
	defer h.Leave()
	if n := h.R.Slots(); i < 0 || i >= n {
		return ipc.SlotStats{}, fmt.Errorf("ops: %q has %d producer slots; slot %d does not exist: %w", h.Seg.Path(), n, i, errs.ErrInvalid)
	}
	var s ipc.SlotStats
	err = h.Inspect(func() error {
		v, err := h.Slot(i)
		s = v.(ipc.SlotStats)
		return err
	})
	if err != nil {
		return ipc.SlotStats{}, err
	}
	return s, nil
}
