package ops

import (
	"errors"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
	"golang.org/x/sys/unix"
)

// Peek returns up to max of the messages waiting in r, oldest first,
// copied, without consuming them: Data is a copy of the payload (the
// caller's to keep); Seq is its sequence in a ring created with
// sequences, Time its commit time (Unix ns) in one created with
// timestamps, Slot the MPSC producer slot that wrote it; each 0 where the
// ring does not record it. Records carry CLOCK_MONOTONIC, the clock every
// process on the machine shares; Peek converts it to Unix time with the
// two clocks' offset when it runs (so a step of the wall clock since the
// commit shows in Time, not in queueing delays).
//
// It is safe on a ring opened read-only and against live producers and a
// live consumer: a message the consumer takes meanwhile may or may not be
// in the result, and in a drop-oldest ring a record being reclaimed may
// show stale bytes. The walk stops at the first uncommitted MPSC
// reservation (not returned: Doctor reports one that is stuck).
// Damage in the records returns an error matching ipc.ErrCorrupt, with the
// messages before it; a segment that cannot be read (its file truncated
// after it was mapped), ipc.ErrCorrupt with ErrFault and no messages.
func Peek(r *ipc.Ring, max int) ([]ipc.Record, error) {
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
	var out []ipc.Record
	var offset int64 // Unix time minus CLOCK_MONOTONIC, read once if needed
	for _, rec := range recs {
		if rec.Type != ring.TypeData {
			continue
		}
		out = append(out, ipc.Record{Data: rec.Payload, Seq: rec.Seq, Slot: rec.Slot})
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
