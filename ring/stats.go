// Stats: snapshots of the control block's and the producer slots' words
// for inspectors, the high watermark, heartbeats.

package ring

import (
	"time"
)

// Stats is a snapshot of a ring's positions and counters. Each field is
// loaded atomically, but not all at one instant.
type Stats struct {
	Capacity    uint64 // data area size in bytes
	MaxMessage  uint64 // largest payload
	ProducerPos uint64 // bytes ever published by the producer
	ConsumerPos uint64 // bytes ever released by the consumer
	Depth       uint64 // ProducerPos-ConsumerPos, clamped to [0, Capacity]
	HighWater   uint64 // largest depth observed by either side, in bytes
	MsgsIn      uint64 // messages written
	BytesIn     uint64 // payload bytes written
	MsgsOut     uint64 // messages read
	BytesOut    uint64 // payload bytes read
	FullEvents  uint64 // writes that found the ring full (once per write call)
	Drops       uint64 // messages dropped by a Drop policy
	Spins       uint64 // wait iterations of a spinning producer
	Lost        uint64 // MPSC: reservations of dead producers skipped by the consumer
	LostBytes   uint64 // MPSC: bytes those reservations occupied

	ConsumerParks   uint64 // times the consumer went to sleep waiting for data
	ConsumerWakeups uint64 // wake system calls producers made for it
	ProducerParks   uint64 // times a producer went to sleep waiting for room
	ProducerWakeups uint64 // wake system calls the consumer made for producers
	ProducerMode    uint32 // wait-mode override for producers (0: none)
	ConsumerMode    uint32 // wait-mode override for the consumer (0: none)

	Window          uint64 // bytes producers may fill (0: the capacity)
	PressureHigh    uint64 // depth at which pressure rises (0: off)
	PressureLow     uint64 // depth at or below which it falls
	Pressure        uint32 // 0 none; bits PressureDepth, PressureDelay
	PressureChanges uint64 // times the pressure level changed
	Overflowed      uint64 // messages handed to an overflow route

	Timestamps        bool                 // records carry their commit time
	Duplicates        uint64               // records discarded as already delivered (sequences)
	LastSeq           uint64               // SPSC sequences: the last one committed (stored after the position store)
	SeqBegun          uint64               // SPSC sequences: the highest written into a record (stored before its commit)
	DelivSeq          uint64               // SPSC sequences: the last one delivered
	Lapped            uint64               // reads discarded because the producer reclaimed the record (overwrite rings)
	Yields            uint64               // sched_yield calls of producers waiting for room
	ConsumerSpins     uint64               // busy-wait iterations of the consumer waiting for data
	ConsumerYields    uint64               // its sched_yield calls
	ConsumerHeartbeat int64                // Unix ns of the consumer's last heartbeat (0: never)
	DelayCount        uint64               // records whose queueing delay was measured
	DelaySum          uint64               // their delays, nanoseconds
	DelayBuckets      [DelayBuckets]uint64 // bucket k: delay in [2^k, 2^(k+1)) ns (bucket 0 also 0 and 1 ns; the last, all above)
	TargetDelay       time.Duration        // adaptive level's target (0: off)
	DelayInterval     time.Duration
}

// SlotStats is a snapshot of one MPSC producer slot.
type SlotStats struct {
	Slot       int
	PID        uint32 // last holder's process ID, in its PID namespace; 0 if never used
	StartTime  uint64 // last holder's start time, clock ticks since boot
	Heartbeat  int64  // Unix nanoseconds of the holder's last heartbeat
	IntentPos  uint64
	IntentLen  uint64
	MsgsIn     uint64
	BytesIn    uint64
	FullEvents uint64
	Drops      uint64
	Spins      uint64
	Lost       uint64
	Overflowed uint64
	Yields     uint64
	LastSeq    uint64 // sequences: the highest this slot's holder wrote into a record (stored before its commit)
	DelivSeq   uint64 // sequences: the last one of this slot delivered

	// PIDNamespace is the inode number of the last holder's PID namespace
	// (0: unknown). PID and StartTime name a process only to an observer
	// in that namespace; to any other they mean nothing.
	PIDNamespace uint64
}

// Slot loads the words of producer slot i (0 <= i < Slots()).
func (r *Ring) Slot(i int) SlotStats {
	if i < 0 || i >= r.slots {
		return SlotStats{Slot: i}
	}
	base := r.SlotOffset(i)
	w := func(off uint64) uint64 { return word(r.region, base+off).Load() }
	return SlotStats{
		Slot: i, PID: uint32(w(slotPID)), StartTime: w(slotStartTime), Heartbeat: int64(w(slotHeartbeat)),
		IntentPos: w(slotIntentPos), IntentLen: w(slotIntentLen),
		MsgsIn: w(slotMsgsIn), BytesIn: w(slotBytesIn), FullEvents: w(slotFullEvents),
		Drops: w(slotDrops), Spins: w(slotSpins), Lost: w(slotLost), Overflowed: w(slotOverflowed),
		LastSeq: w(slotLastSeq), DelivSeq: w(slotDelivSeq), Yields: w(slotYields),
		PIDNamespace: w(slotPIDNS),
	}
}

// SetSlotOwner records the holder of slot i (process ID, start time and PID
// namespace, 0 if unknown) and its first heartbeat. Called by the slot's new
// holder, after it has taken the slot's lock and before it reserves
// anything. An observer may meanwhile load a mix of the previous holder's
// words and these; whatever it judges from them applies only to what the
// slot records at that moment, which is all the dead predecessor's.
func (r *Ring) SetSlotOwner(i int, pid uint32, startTime, pidNS uint64, nowNanos int64) {
	base := r.SlotOffset(i)
	word(r.region, base+slotPID).Store(uint64(pid))
	word(r.region, base+slotStartTime).Store(startTime)
	word(r.region, base+slotPIDNS).Store(pidNS)
	word(r.region, base+slotHeartbeat).Store(uint64(nowNanos))
}

// Heartbeat stores the time in slot i's heartbeat word (display only).
func (r *Ring) Heartbeat(i int, nowNanos int64) {
	word(r.region, r.SlotOffset(i)+slotHeartbeat).Store(uint64(nowNanos))
}

// Stats loads the ring's positions and counters. The two positions are a
// pair the ring was in (loadPositions), unless they kept moving through
// every attempt. It never fails: damaged positions (or a pair that never
// held still) show as a depth clamped to [0, Capacity].
func (r *Ring) Stats() Stats {
	w := func(off uint64) uint64 { return word(r.region, off).Load() }
	s := Stats{
		Capacity:   r.capacity,
		MaxMessage: r.maxMessage,
		HighWater:  w(offHighWater),
		MsgsIn:     w(offMsgsIn),
		BytesIn:    w(offBytesIn),
		MsgsOut:    w(offMsgsOut),
		BytesOut:   w(offBytesOut),
		FullEvents: w(offFullEvents),
		Drops:      w(offDrops),
		Spins:      w(offSpins),
		Lost:       w(offLost),
		LostBytes:  w(offLostBytes),

		ConsumerParks:   w(offConsWait + waitParks),
		ConsumerWakeups: w(offConsWait + waitWakeups),
		ProducerParks:   w(offProdWait + waitParks),
		ProducerWakeups: w(offProdWait + waitWakeups),
		ProducerMode:    word32(r.region, offProdMode).Load(),
		ConsumerMode:    word32(r.region, offConsMode).Load(),

		Window:          w(offWindow),
		PressureHigh:    w(offPressureHigh),
		PressureLow:     w(offPressureLow),
		Pressure:        word32(r.region, offPressure).Load(),
		PressureChanges: w(offPressureChanges),
		Overflowed:      w(offOverflowed),

		Timestamps:        r.ts,
		Duplicates:        w(offDuplicates),
		LastSeq:           w(offLastSeq),
		SeqBegun:          w(offSeqBegun),
		DelivSeq:          w(offDelivSeq),
		Lapped:            w(offLapped),
		Yields:            w(offYields),
		ConsumerSpins:     w(offConsSpins),
		ConsumerYields:    w(offConsYields),
		ConsumerHeartbeat: int64(w(offConsBeat)),
		DelayCount:        w(offDelayCount),
		DelaySum:          w(offDelaySum),
		TargetDelay:       time.Duration(w(offTargetDelay)),
		DelayInterval:     time.Duration(w(offDelayInterval)),
	}
	for k := range s.DelayBuckets {
		s.DelayBuckets[k] = w(offDelayHist + uint64(k)*8)
	}
	for i := 0; i < r.slots; i++ {
		sl := r.Slot(i)
		s.MsgsIn += sl.MsgsIn
		s.BytesIn += sl.BytesIn
		s.FullEvents += sl.FullEvents
		s.Drops += sl.Drops
		s.Spins += sl.Spins
		s.Overflowed += sl.Overflowed
		s.Yields += sl.Yields
	}
	// A pair the ring was in (a header-commit ring's consumer may be past
	// the published producer position: depth 0). Damaged positions, or a
	// pair that never held still, are clamped: the region is untrusted.
	pr, err := r.loadPositions(100)
	s.ProducerPos, s.ConsumerPos = pr.p, pr.c
	switch {
	case err == nil:
		s.Depth = pr.depth
	case int64(pr.p-pr.c) < 0:
		s.Depth = 0
	default:
		s.Depth = r.capacity
	}
	// The watermark is raised on slow paths only; never show it below the
	// depth seen right now.
	s.HighWater = max(s.HighWater, s.Depth)
	return s
}

// casTries bounds the compare-and-swap loops on words that other processes
// write (the high watermark, the pressure word): a co-tenant that keeps
// changing the word must not keep a producer or consumer looping. Each
// such word is a statistic or a signal that the next reload raises again,
// so giving up loses at most one update.
const casTries = 4

// Steps of a bounded compare-and-swap loop at which a test's hook
// (Ring.hook) is called, between the load and the compare-and-swap, so
// that it can change the word as a co-tenant would (export_test.go).
const (
	stepHighWaterCAS = 300 + iota // raiseHighWater
	stepPressureCAS               // raisePressure
)

// raiseHighWater raises the high watermark to depth if it is higher. Called
// on slow paths only (a reload of the other side's position). The
// watermark is a statistic: after casTries failed compare-and-swaps (the
// word changed under each, which any process may do: ringctl reset, the
// other side, a hostile co-tenant) it gives up; the next reload tries again.
func (r *Ring) raiseHighWater(depth uint64) {
	hw := word(r.region, offHighWater)
	for range casTries {
		// The high watermark: any process may store or raise it; a value.
		cur := hw.Load()
		if depth <= cur {
			return
		}
		if r.hook != nil {
			r.hook(stepHighWaterCAS)
		}
		if hw.CompareAndSwap(cur, depth) {
			return
		}
	}
}

// ResetHighWater sets the high watermark to the current depth, starting a
// new observation period (ringctl reset).
func (r *Ring) ResetHighWater() {
	var d uint64 // 0 if damaged
	if pr, err := r.loadPositions(100); err == nil {
		d = pr.depth
	}
	word(r.region, offHighWater).Store(d)
}

// ConsumerHeartbeat stores the time in the consumer's heartbeat word.
func (r *Ring) ConsumerHeartbeat(nowNanos int64) { word(r.region, offConsBeat).Store(uint64(nowNanos)) }
