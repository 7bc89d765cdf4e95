package ipc

import (
	"errors"
	"time"

	"github.com/shmring/shmring/ring"
)

// Stats.DelayBuckets is the ring's histogram: its length is written as a
// literal (so that go doc shows it) and checked at compile time against
// the ring package's (one of the arrays below has a negative length if the
// two differ).
var (
	_ [len(Stats{}.DelayBuckets) - ring.DelayBuckets]struct{}
	_ [ring.DelayBuckets - len(Stats{}.DelayBuckets)]struct{}
)

// Stats is a snapshot of a ring's configuration, counters and attachment,
// read from the segment by [Ring.Stats] (so it covers every process using
// the ring). Each counter is loaded atomically, but not all at one instant.
type Stats struct {
	// The creation parameters (see Config).
	Kind         Kind   // SPSC or MPSC
	Capacity     uint64 // data area size in bytes
	MaxMessage   uint64 // largest payload
	Slots        int    // MPSC producer slots (0 for SPSC)
	Sequences    bool   // records carry their producer's sequence number
	Timestamps   bool   // records carry their commit time
	HeaderCommit bool   // the SPSC consumer finds records by their headers
	DropOldest   bool   // producers may reclaim the oldest records
	Doorbell     bool   // descriptor flag bit 4: producers ring a wait set's doorbell (Config.Doorbell)

	// Line 15 (rings with Doorbell; docs/layout.md, "Line 15: doorbell"):
	// the id of the doorbell a wait set holding the consumer role stored
	// (0: none), the doorbell FUTEX_WAKEs producers made, and the doorbells
	// producers could not open or validate (they woke the ring's own word).
	DoorbellID, DoorbellWakes, DoorbellFailures uint64

	ProducerAttached bool // SPSC: a live process holds the producer role; MPSC: at least one slot is held
	ConsumerAttached bool // a live process holds the consumer role

	ProducerPos uint64 // bytes ever published by the producers
	ConsumerPos uint64 // bytes ever released by the consumer
	Depth       uint64 // ProducerPos-ConsumerPos, clamped to [0, Capacity]
	HighWater   uint64 // largest depth observed by either side, in bytes
	MsgsIn      uint64 // messages written
	BytesIn     uint64 // payload bytes written
	MsgsOut     uint64 // messages read
	BytesOut    uint64 // payload bytes read
	FullEvents  uint64 // writes that found the ring full (once per write call)
	Drops       uint64 // messages dropped (Drop, DropOldest, a wait given up)
	Spins       uint64 // busy-wait iterations of producers waiting for room
	Yields      uint64 // sched_yield calls of producers waiting for room
	Lost        uint64 // MPSC: reservations of dead producers skipped by the consumer
	LostBytes   uint64 // MPSC: bytes those reservations occupied
	Overflowed  uint64 // messages handed to an overflow route
	Duplicates  uint64 // records discarded as already delivered (sequences)
	Lapped      uint64 // reads discarded because a producer reclaimed the record (DropOldest rings)

	ConsumerParks     uint64 // times the consumer went to sleep waiting for data
	ConsumerWakeups   uint64 // wake system calls producers made for it
	ConsumerSpins     uint64 // busy-wait iterations of the consumer waiting for data
	ConsumerYields    uint64 // its sched_yield calls
	ConsumerHeartbeat int64  // Unix ns of the consumer's last heartbeat (0: never)
	ProducerParks     uint64 // times a producer went to sleep waiting for room
	ProducerWakeups   uint64 // wake system calls the consumer made for producers

	// ProducerOverride and ConsumerOverride are the wait policies an
	// operator set in the segment (ringctl policy) over the producers' and
	// the consumer's own: "" none, else the policy's name as ringctl
	// policy prints it ("spin", "drop", "backoff", "yield", "park",
	// "block", "hybrid", "overflow", "drop-oldest").
	ProducerOverride string
	ConsumerOverride string

	Window          uint64   // bytes producers may fill (0: the capacity); see ops.SetWindow
	PressureHigh    uint64   // depth at which pressure rises (0: off)
	PressureLow     uint64   // depth at or below which it falls
	Pressure        Pressure // the pressure now
	PressureChanges uint64   // times the pressure level changed

	LastSeq  uint64 // SPSC sequences: the last one committed (stored after the position store)
	SeqBegun uint64 // SPSC sequences: the highest written into a record (stored before its commit)
	DelivSeq uint64 // SPSC sequences: the last one delivered

	DelayCount    uint64        // records whose queueing delay was measured (Timestamps)
	DelaySum      uint64        // their delays, nanoseconds
	DelayBuckets  [32]uint64    // bucket k: delay in [2^k, 2^(k+1)) ns (bucket 0 also 0 and 1 ns; the last, all above)
	TargetDelay   time.Duration // the adaptive level's target (0: off)
	DelayInterval time.Duration // and its interval

	// Producers lists the MPSC slots that have ever been used, or are held.
	Producers []SlotStats
}

// SlotStats describes one producer: an MPSC slot ([Stats].Producers,
// [Producer.Stats]), or an SPSC ring's producer ([Producer.Stats]: the
// ring's producer counters, as slot 0).
type SlotStats struct {
	Slot       int    // the slot, 0 to Slots-1 (ProducerConfig.ID-1)
	PID        uint32 // last holder's process ID, in its PID namespace; 0 if never used
	StartTime  uint64 // last holder's start time, clock ticks since boot
	Heartbeat  int64  // Unix ns of the holder's last heartbeat
	IntentPos  uint64 // the reservation the holder is writing: its position
	IntentLen  uint64 // and its length (0: none)
	MsgsIn     uint64 // messages written
	BytesIn    uint64 // payload bytes written
	FullEvents uint64 // writes that found the ring full
	Drops      uint64 // messages dropped
	Spins      uint64 // busy-wait iterations waiting for room
	Lost       uint64 // reservations of this slot skipped by the consumer (its holder died)
	Overflowed uint64 // messages handed to an overflow route
	Yields     uint64 // sched_yield calls waiting for room
	LastSeq    uint64 // sequences: the highest this slot's holder wrote into a record (stored before its commit)
	DelivSeq   uint64 // sequences: the last one of this slot delivered

	// PIDNamespace is the inode number of the last holder's PID namespace
	// (0: unknown). PID and StartTime name a process only to an observer
	// in that namespace; to any other they mean nothing.
	PIDNamespace uint64

	// Alive: a process holds the slot's lock, and the recorded holder is
	// not known to be gone (see the consumer's rule in docs/design.md,
	// "Liveness"): what a consumer would decide. A holder in another PID
	// namespace is alive while it holds the lock.
	Alive bool
	// NextSeq is, in a ring created with Config.Sequences, the sequence
	// the next message of this producer ID gets: one past the highest it
	// may have committed, across restarts and kills (0 in a ring without
	// sequences).
	NextSeq uint64
}

// slotStats copies one slot's words.
func slotStats(s ring.SlotStats, alive, seqs bool) SlotStats {
	out := SlotStats{Slot: s.Slot, PID: s.PID, StartTime: s.StartTime, Heartbeat: s.Heartbeat,
		IntentPos: s.IntentPos, IntentLen: s.IntentLen, MsgsIn: s.MsgsIn, BytesIn: s.BytesIn,
		FullEvents: s.FullEvents, Drops: s.Drops, Spins: s.Spins, Lost: s.Lost,
		Overflowed: s.Overflowed, Yields: s.Yields, LastSeq: s.LastSeq, DelivSeq: s.DelivSeq,
		PIDNamespace: s.PIDNamespace, Alive: alive}
	if seqs {
		out.NextSeq = s.LastSeq + 1
	}
	return out
}

// Pressure is a ring's soft backpressure level (see Config.HighWater and
// Config.TargetDelay): producers may slow down while it is raised
// (ProducerConfig.Throttle); the hard level, a full ring, is where
// ProducerConfig.Full applies.
type Pressure struct {
	Depth bool // the depth passed the high level and has not fallen to the low one
	Delay bool // queueing delay is above the target
}

// pressureOf decodes the ring's pressure word.
func pressureOf(w uint32) Pressure {
	return Pressure{Depth: w&ring.PressureDepth != 0, Delay: w&ring.PressureDelay != 0}
}

// Record is one message as [Consumer.Batch] yields it.
type Record struct {
	// Data is the payload. From Batch it points into the ring (zero-copy):
	// see Batch for how long it stays valid.
	Data []byte
	// Seq is the message's sequence in a ring created with Sequences;
	// else 0.
	Seq uint64
	// Slot is the MPSC producer slot that wrote it, as the record's header
	// says; 0 in an SPSC ring.
	Slot int
	// Time is its commit time in a ring created with Timestamps, Unix ns
	// (records carry CLOCK_MONOTONIC, converted with the two clocks' offset
	// read once per batch); else 0.
	Time int64
	// Pos is the ring position just past the message (the bytes written to
	// the ring before its end, since the ring's creation): what
	// [Consumer.Release] takes to hand back the message and all before it.
	Pos uint64
}

// overrideName is a segment override word as Stats shows it.
func overrideName(w uint32) string {
	if w == 0 {
		return ""
	}
	return policy(w).String()
}

// statsOf copies the ring package's snapshot into ipc's Stats.
func statsOf(s ring.Stats) Stats {
	return Stats{
		Capacity: s.Capacity, MaxMessage: s.MaxMessage, Timestamps: s.Timestamps,
		ProducerPos: s.ProducerPos, ConsumerPos: s.ConsumerPos, Depth: s.Depth, HighWater: s.HighWater,
		MsgsIn: s.MsgsIn, BytesIn: s.BytesIn, MsgsOut: s.MsgsOut, BytesOut: s.BytesOut,
		FullEvents: s.FullEvents, Drops: s.Drops, Spins: s.Spins, Yields: s.Yields,
		Lost: s.Lost, LostBytes: s.LostBytes, Overflowed: s.Overflowed,
		Duplicates: s.Duplicates, Lapped: s.Lapped,
		ConsumerParks: s.ConsumerParks, ConsumerWakeups: s.ConsumerWakeups,
		ConsumerSpins: s.ConsumerSpins, ConsumerYields: s.ConsumerYields,
		ConsumerHeartbeat: s.ConsumerHeartbeat,
		ProducerParks:     s.ProducerParks, ProducerWakeups: s.ProducerWakeups,
		ProducerOverride: overrideName(s.ProducerMode), ConsumerOverride: overrideName(s.ConsumerMode),
		Window: s.Window, PressureHigh: s.PressureHigh, PressureLow: s.PressureLow,
		Pressure: pressureOf(s.Pressure), PressureChanges: s.PressureChanges,
		LastSeq: s.LastSeq, SeqBegun: s.SeqBegun, DelivSeq: s.DelivSeq,
		DelayCount: s.DelayCount, DelaySum: s.DelaySum, DelayBuckets: s.DelayBuckets,
		TargetDelay: s.TargetDelay, DelayInterval: s.DelayInterval,
	}
}

// Stats reads the ring's configuration, counters and attachment from the
// segment. It costs the producer and consumer nothing. Safe for concurrent
// use; ErrClosed after Close.
//
// A segment file truncated (or grown) after it was mapped is reported as
// ErrCorrupt, saying to what size, from what and what to do, rather than
// read (see docs/security.md).
func (r *Ring) Stats() (s Stats, err error) {
	if err := r.enter(); err != nil {
		return Stats{}, err
	}
	defer r.leave()
	err = r.inspect(func() error {
		var err error
		s, err = r.stats()
		return err
	})
	if isUnreadable(err) {
		return Stats{}, err
	}
	return s, err
}

// stats is Stats, run under inspect.
func (r *Ring) stats() (Stats, error) {
	s := statsOf(r.r.Stats())
	s.Kind, s.Slots = kindOf(r.r.Kind()), r.r.Slots()
	s.DropOldest, s.Sequences, s.HeaderCommit = r.r.Overwrite(), r.r.Sequences(), r.r.HeaderCommit()
	if s.Doorbell = r.r.Doorbell(); s.Doorbell {
		bl := r.r.DoorbellLine()
		s.DoorbellID, s.DoorbellWakes, s.DoorbellFailures = bl.ID.Load(), bl.Wakes.Load(), bl.Failures.Load()
	}
	var errs []error
	var err error
	if r.r.Kind() == ring.SPSC {
		s.ProducerAttached, err = r.seg.Locked(ring.ProducerLine, ring.LineSize)
		errs = append(errs, err)
	}
	for i := 0; i < r.r.Slots(); i++ {
		sl := r.r.Slot(i)
		alive, err := r.slotLiveness(i, sl)
		errs = append(errs, err)
		if sl.PID == 0 && !alive {
			continue
		}
		s.Producers = append(s.Producers, slotStats(sl, alive, s.Sequences))
		s.ProducerAttached = s.ProducerAttached || alive
	}
	s.ConsumerAttached, err = r.seg.Locked(ring.ConsumerLine, ring.LineSize)
	errs = append(errs, err)
	return s, errors.Join(errs...)
}
