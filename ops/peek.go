package ops

import (
	"errors"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
	"golang.org/x/sys/unix"
)

// Record is one entry of Peek: a message waiting in the ring, copied, and
// where it lies.
type Record struct {
	// Data is a copy of the payload (the caller's to keep); Seq its
	// sequence in a ring created with sequences, Time its commit time
	// (Unix ns) in one created with timestamps, Slot the MPSC producer
	// slot that wrote it; each 0 where the ring does not record it.
	ipc.Record
	// Start is the record's position: bytes written to the ring before it
	// since its creation (docs/layout.md, "Positions"). The embedded
	// Record's Pos is where it ends (as a Batch gives it: the position
	// Consumer.Release takes); Pos-Start is the record's size in the ring.
	Start uint64
	// Uncommitted marks an MPSC reservation a producer has not committed
	// yet, where the walk stopped (always the last entry; Data is empty):
	// a live producer is writing it, or a dead one left it (Doctor tells
	// which).
	Uncommitted bool
}

// Peek returns up to max of the messages waiting in r, oldest first,
// copied, without consuming them (see Record), followed, when the walk
// stopped at an uncommitted MPSC reservation, by that reservation. Records carry CLOCK_MONOTONIC, the clock every
// process on the machine shares; Peek converts it to Unix time with the
// two clocks' offset when it runs (so a step of the wall clock since the
// commit shows in Time, not in queueing delays).
//
// It is safe on a ring opened read-only and against live producers and a
// live consumer: a message the consumer takes meanwhile may or may not be
// in the result, and in a drop-oldest ring a record being reclaimed may
// show stale bytes. The walk stops at the first uncommitted MPSC
// reservation, returned as the last Record with Uncommitted set (Doctor
// reports whether it is stuck); max counts it.
// Damage in the records returns an error matching ipc.ErrCorrupt, with the
// messages before it; a segment that cannot be read (its file truncated
// after it was mapped), ipc.ErrCorrupt with ErrFault and no messages.
func Peek(r *ipc.Ring, max int) ([]Record, error) {
	h, err := enter("peek", r)
	if err != nil {
		return nil, err
	}
	defer h.Leave()
	var recs []ring.Record
	err = h.Inspect(func() error {
		var err error
		recs, err = h.R.Peek(max)
		return err
	})
	if errors.Is(err, ErrFault) {
		return nil, err // what was read came from a file that changed size under it
	}
	var out []Record
	var offset int64 // Unix time minus CLOCK_MONOTONIC, read once if needed
	for _, rec := range recs {
		switch rec.Type {
		case ring.TypeData:
		case ring.TypePending, ring.TypeNone:
			out = append(out, Record{Record: ipc.Record{Slot: rec.Slot}, Start: rec.Pos, Uncommitted: true})
			continue
		default:
			continue
		}
		out = append(out, Record{Record: ipc.Record{Data: rec.Payload, Seq: rec.Seq, Slot: rec.Slot, Pos: rec.End}, Start: rec.Pos})
		if rec.Time != 0 {
			if offset == 0 {
				offset = monotonicToUnix()
			}
			out[len(out)-1].Time = rec.Time + offset
		}
	}
	return out, err
}

// monotonicToUnix returns what to add to a CLOCK_MONOTONIC reading (the
// clock of record timestamps) to get Unix time, now.
func monotonicToUnix() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0 // never on Linux; the times then stay monotonic readings
	}
	return time.Now().UnixNano() - ts.Nano()
}
