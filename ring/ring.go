package ring

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"sync/atomic"
	"time"
)

// Config fixes a ring's geometry at Format time.
type Config struct {
	// Kind is SPSC (the default) or MPSC.
	Kind Kind
	// Capacity is the size of the data area in bytes: a power of two between
	// MinCapacity and MaxCapacity.
	Capacity uint64
	// MaxMessage is the largest payload a record may carry. Zero means
	// Capacity/8; it may not exceed Capacity/8 nor MaxMessageLimit.
	MaxMessage uint64
	// Slots is the number of producer slots of an MPSC ring, the most
	// producers that can be attached at once: 1 to MaxSlots, 0 meaning
	// DefaultSlots. SPSC rings have none and must leave it 0.
	Slots int
	// Timestamps makes every record carry its commit time, so that the
	// consumer measures queueing delay (the histogram, the adaptive level).
	// It costs 8 bytes and a clock read per record.
	Timestamps bool
	// Sequences makes every record carry its producer's sequence number,
	// so that the consumer discards duplicates (8 bytes per record).
	Sequences bool
	// Overwrite lets producers reclaim the oldest records when the ring is
	// full (TryWriteOverwrite: newest wins). The consumer then pays a copy
	// and a compare-and-swap per record (MPSC: a lock taken and released
	// per record, see TryWriteOverwrite). An MPSC ring with Overwrite is
	// layout version 2.
	Overwrite bool
	// HeaderCommit (SPSC) makes the consumer find committed records by
	// their headers instead of the producer position: one cache line less
	// to move per message between the two processes. The ring holds 8
	// bytes less. Not with Overwrite. Layout version 2.
	HeaderCommit bool
}

// withDefaults fills zero fields and checks the result.
func (c Config) withDefaults() (Config, error) {
	if c.Kind == 0 {
		c.Kind = SPSC
	}
	switch c.Kind {
	case SPSC:
		if c.Slots != 0 {
			return c, fmt.Errorf("ring: an spsc ring has no producer slots (asked for %d); use kind mpsc", c.Slots)
		}
		if c.HeaderCommit && c.Overwrite {
			return c, fmt.Errorf("ring: header commit and overwrite (drop oldest) do not go together: create the ring with one or the other")
		}
	case MPSC:
		if c.HeaderCommit {
			return c, fmt.Errorf("ring: header commit is how an mpsc ring always works; it is an option of spsc rings")
		}
		if c.Slots == 0 {
			c.Slots = DefaultSlots
		}
		if c.Slots < 1 || c.Slots > MaxSlots {
			return c, fmt.Errorf("ring: %d producer slots: want 1 to %d", c.Slots, MaxSlots)
		}
	default:
		return c, fmt.Errorf("ring: kind %d is unknown (want spsc or mpsc): %w", uint32(c.Kind), ErrIncompatible)
	}
	if c.Capacity < MinCapacity || c.Capacity > MaxCapacity || bits.OnesCount64(c.Capacity) != 1 {
		return c, fmt.Errorf("ring: capacity %d must be a power of two between %d and %d", c.Capacity, uint64(MinCapacity), uint64(MaxCapacity))
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = min(c.Capacity/8, MaxMessageLimit)
	}
	if c.MaxMessage > c.Capacity/8 || c.MaxMessage > MaxMessageLimit {
		return c, fmt.Errorf("ring: max message %d exceeds capacity/8 (%d) or %d; use a larger capacity", c.MaxMessage, c.Capacity/8, MaxMessageLimit)
	}
	return c, nil
}

// dataOffset is where the data area starts: after the control block and,
// in MPSC rings, the slot table, on a 4096-byte boundary.
func (c Config) dataOffset() uint64 {
	return (SlotsOffset + uint64(c.Slots)*LineSize + ControlSize - 1) &^ (ControlSize - 1)
}

// Size returns the region size a ring with this configuration needs.
func Size(c Config) (uint64, error) {
	c, err := c.withDefaults()
	if err != nil {
		return 0, err
	}
	return c.dataOffset() + c.Capacity, nil
}

// Format writes an empty ring into region, which must be at least Size(c)
// bytes, 8-aligned, and not yet visible to any other party (the caller
// publishes it afterwards). Format overwrites the control block; the data
// area is zeroed.
func Format(region []byte, c Config) error {
	return formatAt(region, c, 0)
}

// formatAt is Format with both positions starting at start (a multiple of
// Align): tests use it to run a ring through the 2^64 wrap of its positions.
func formatAt(region []byte, c Config, start uint64) error {
	c, err := c.withDefaults()
	if err != nil {
		return err
	}
	if !aligned(region) {
		return fmt.Errorf("ring: region is not 8-byte aligned")
	}
	dataOff := c.dataOffset()
	if uint64(len(region)) < dataOff+c.Capacity {
		return fmt.Errorf("ring: region of %d bytes is smaller than the %d a ring of capacity %d needs", len(region), dataOff+c.Capacity, c.Capacity)
	}
	if start%Align != 0 {
		return fmt.Errorf("ring: start position %d is not %d-aligned", start, Align)
	}
	clear(region[:dataOff+c.Capacity])
	d := region[:descSize]
	binary.LittleEndian.PutUint64(d[offMagic:], Magic)
	binary.LittleEndian.PutUint32(d[offVersion:], c.version())
	binary.LittleEndian.PutUint32(d[offKind:], uint32(c.Kind))
	binary.LittleEndian.PutUint64(d[offCapacity:], c.Capacity)
	binary.LittleEndian.PutUint64(d[offMaxMessage:], c.MaxMessage)
	binary.LittleEndian.PutUint64(d[offDataOffset:], dataOff)
	var flags uint64
	if c.Timestamps {
		flags |= FlagTimestamps
	}
	if c.Sequences {
		flags |= FlagSequences
	}
	if c.Overwrite {
		flags |= FlagOverwrite
	}
	if c.HeaderCommit {
		flags |= FlagHeaderCommit
	}
	binary.LittleEndian.PutUint64(d[offFlags:], flags)
	if c.Kind == MPSC {
		binary.LittleEndian.PutUint64(d[offSlotsOff:], SlotsOffset)
		binary.LittleEndian.PutUint32(d[offSlotCount:], uint32(c.Slots))
	}
	binary.LittleEndian.PutUint32(d[offChecksum:], crc32.Checksum(d[:offChecksum], castagnoli))
	word(region, offProducerPos).Store(start)
	word(region, offConsumerPos).Store(start)
	word(region, offZeroEnd).Store(start)
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Ring is a validated view of a ring's descriptor in a region. It is
// immutable and safe for concurrent use; it makes Producers and Consumers.
type Ring struct {
	region     []byte
	data       []byte
	kind       Kind
	capacity   uint64
	maxMessage uint64
	dataOff    uint64
	slots      int
	extra      uint64 // bytes between a data record's header and payload: 8 each for a timestamp and a sequence
	tsOff      uint64 // offset of the timestamp after the header, if any
	seqOff     uint64 // offset of the sequence after the header, if any
	ts, seqs   bool
	overwrite  bool
	polled     bool                  // FlagHeaderCommit: the consumer polls headers and zeroes
	alive      func(holder int) bool // MPSC drop-oldest: is the release lock's holder alive
	hook       func(step int)        // test only: called in a release (stepReleaseMarked)
}

// version is the layout version a ring of this configuration is written
// with: the oldest a reader must understand.
func (c Config) version() uint32 {
	if c.Kind == MPSC && c.Overwrite || c.HeaderCommit {
		return VersionSharedOverwrite
	}
	return Version
}

// Attach validates the descriptor of the ring in region, most specific check
// first (magic, version, kind, checksum, geometry), and returns a view of it.
// Everything in the region is untrusted: a failed check returns an error
// wrapping ErrCorrupt or ErrIncompatible that names the field and its offset.
func Attach(region []byte) (*Ring, error) {
	if len(region) < ControlSize {
		return nil, fmt.Errorf("ring: region of %d bytes is smaller than the %d-byte control block: %w", len(region), ControlSize, ErrCorrupt)
	}
	if !aligned(region) {
		return nil, fmt.Errorf("ring: region is not 8-byte aligned")
	}
	d := region[:descSize]
	if m := binary.LittleEndian.Uint64(d[offMagic:]); m != Magic {
		return nil, fmt.Errorf("ring: magic at offset %d is %#016x, want %#016x (not a shmring ring): %w", offMagic, m, Magic, ErrCorrupt)
	}
	v := binary.LittleEndian.Uint32(d[offVersion:])
	if v != Version && v != VersionSharedOverwrite {
		return nil, fmt.Errorf("ring: layout version at offset %d is %d, this build reads %d and %d; use a shmring release that reads version %d: %w", offVersion, v, Version, VersionSharedOverwrite, v, ErrIncompatible)
	}
	kind := Kind(binary.LittleEndian.Uint32(d[offKind:]))
	if kind != SPSC && kind != MPSC {
		return nil, fmt.Errorf("ring: kind at offset %d is %d, this build knows spsc (1) and mpsc (2): %w", offKind, uint32(kind), ErrIncompatible)
	}
	if got, want := binary.LittleEndian.Uint32(d[offChecksum:]), crc32.Checksum(d[:offChecksum], castagnoli); got != want {
		return nil, fmt.Errorf("ring: descriptor checksum at offset %d is %#08x, computed %#08x: %w", offChecksum, got, want, ErrCorrupt)
	}
	capacity := binary.LittleEndian.Uint64(d[offCapacity:])
	if capacity < MinCapacity || capacity > MaxCapacity || bits.OnesCount64(capacity) != 1 {
		return nil, fmt.Errorf("ring: capacity at offset %d is %d, not a power of two in [%d, %d]: %w", offCapacity, capacity, uint64(MinCapacity), uint64(MaxCapacity), ErrCorrupt)
	}
	maxMsg := binary.LittleEndian.Uint64(d[offMaxMessage:])
	if maxMsg > capacity/8 || maxMsg > MaxMessageLimit {
		return nil, fmt.Errorf("ring: max message at offset %d is %d, above capacity/8 = %d: %w", offMaxMessage, maxMsg, capacity/8, ErrCorrupt)
	}
	flags := binary.LittleEndian.Uint64(d[offFlags:])
	if flags&^knownFlags != 0 {
		return nil, fmt.Errorf("ring: flags at offset %d are %#x, this build knows %#x: %w", offFlags, flags, uint64(knownFlags), ErrIncompatible)
	}
	if flags&FlagHeaderCommit != 0 && (kind != SPSC || flags&FlagOverwrite != 0) {
		return nil, fmt.Errorf("ring: flags at offset %d are %#x: header commit is for spsc rings without overwrite: %w", offFlags, flags, ErrCorrupt)
	}
	if want := (Config{Kind: kind, Overwrite: flags&FlagOverwrite != 0, HeaderCommit: flags&FlagHeaderCommit != 0}).version(); v != want {
		return nil, fmt.Errorf("ring: layout version at offset %d is %d, but a %v ring with flags %#x is version %d: %w", offVersion, v, kind, flags, want, ErrCorrupt)
	}
	slotsOff := binary.LittleEndian.Uint64(d[offSlotsOff:])
	slots := binary.LittleEndian.Uint32(d[offSlotCount:])
	cfg := Config{Kind: kind, Capacity: capacity, Slots: int(slots)}
	switch {
	case kind == SPSC && (slotsOff != 0 || slots != 0):
		return nil, fmt.Errorf("ring: an spsc ring has slot table offset %d (offset %d) and %d slots (offset %d), want 0 and 0: %w", slotsOff, offSlotsOff, slots, offSlotCount, ErrCorrupt)
	case kind == MPSC && (slotsOff != SlotsOffset || slots < 1 || slots > MaxSlots):
		return nil, fmt.Errorf("ring: an mpsc ring has slot table offset %d (offset %d) and %d slots (offset %d), want %d and 1 to %d: %w", slotsOff, offSlotsOff, slots, offSlotCount, SlotsOffset, MaxSlots, ErrCorrupt)
	}
	dataOff := cfg.dataOffset()
	if off := binary.LittleEndian.Uint64(d[offDataOffset:]); off != dataOff {
		return nil, fmt.Errorf("ring: data offset at offset %d is %d, want %d: %w", offDataOffset, off, dataOff, ErrCorrupt)
	}
	if uint64(len(region)) < dataOff+capacity {
		return nil, fmt.Errorf("ring: region of %d bytes is too small for capacity %d (needs %d): %w", len(region), capacity, dataOff+capacity, ErrCorrupt)
	}
	return (&Ring{
		region:     region,
		data:       region[dataOff : dataOff+capacity],
		kind:       kind,
		capacity:   capacity,
		maxMessage: maxMsg,
		dataOff:    dataOff,
		slots:      int(slots),
		ts:         flags&FlagTimestamps != 0,
		seqs:       flags&FlagSequences != 0,
		overwrite:  flags&FlagOverwrite != 0,
		polled:     flags&FlagHeaderCommit != 0,
	}).withExtras(), nil
}

// Kind returns the ring's kind.
func (r *Ring) Kind() Kind { return r.kind }

// Capacity returns the size of the data area in bytes.
func (r *Ring) Capacity() uint64 { return r.capacity }

// MaxMessage returns the largest payload a record may carry.
func (r *Ring) MaxMessage() uint64 { return r.maxMessage }

// withExtras places the optional words between a data record's header and
// its payload: the timestamp, then the sequence.
func (r *Ring) withExtras() *Ring {
	if r.ts {
		r.tsOff, r.extra = HeaderSize, 8
	}
	if r.seqs {
		r.seqOff, r.extra = HeaderSize+r.extra, r.extra+8
	}
	return r
}

// HeaderCommit reports whether the consumer finds records by their headers
// (FlagHeaderCommit).
func (r *Ring) HeaderCommit() bool { return r.polled }

// Overwrite reports whether the producer may reclaim the oldest records.
func (r *Ring) Overwrite() bool { return r.overwrite }

// Sequences reports whether records carry sequence numbers.
func (r *Ring) Sequences() bool { return r.seqs }

// dataSize is the space a data record with an n-byte payload occupies
// (padding records have no timestamp: recordSize).
func (r *Ring) dataSize(n uint64) uint64 {
	return (HeaderSize + r.extra + n + Align - 1) &^ (Align - 1)
}

// Timestamps reports whether records carry their commit time.
func (r *Ring) Timestamps() bool { return r.ts }

// Slots returns the number of producer slots (0 for SPSC).
func (r *Ring) Slots() int { return r.slots }

// SlotOffset returns the region offset of producer slot i's line: package
// ipc takes the slot's liveness lock on that range (LineSize bytes).
func (r *Ring) SlotOffset(i int) uint64 { return SlotsOffset + uint64(i)*LineSize }

// DataOffset returns the region offset of the data area.
func (r *Ring) DataOffset() uint64 { return r.dataOff }

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

// Stats loads the ring's positions and counters. It never fails: damaged
// positions show as a depth clamped to [0, Capacity].
func (r *Ring) Stats() Stats {
	w := func(off uint64) uint64 { return word(r.region, off).Load() }
	s := Stats{
		Capacity:    r.capacity,
		MaxMessage:  r.maxMessage,
		ConsumerPos: w(offConsumerPos),
		ProducerPos: w(offProducerPos),
		HighWater:   w(offHighWater),
		MsgsIn:      w(offMsgsIn),
		BytesIn:     w(offBytesIn),
		MsgsOut:     w(offMsgsOut),
		BytesOut:    w(offBytesOut),
		FullEvents:  w(offFullEvents),
		Drops:       w(offDrops),
		Spins:       w(offSpins),
		Lost:        w(offLost),
		LostBytes:   w(offLostBytes),

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
	// The consumer position was loaded first, so in a healthy ring the
	// difference is negative only in a header-commit ring, whose consumer
	// may be past the published producer position (span: depth 0). Damaged
	// positions are clamped: the region is untrusted.
	if d, _, ok := r.span(s.ProducerPos, s.ConsumerPos); ok {
		s.Depth = d
	} else if d := s.ProducerPos - s.ConsumerPos; int64(d) < 0 {
		s.Depth = 0
	} else {
		s.Depth = r.capacity
	}
	// The watermark is raised on slow paths only; never show it below the
	// depth seen right now.
	s.HighWater = max(s.HighWater, s.Depth)
	return s
}

// span checks a producer position p and a consumer position c loaded from
// the region and returns the depth between them. Legal pairs are 8-aligned
// with 0 <= p-c <= capacity, or, in a header-commit ring, the consumer up
// to capacity-8 bytes past p (depth 0): its consumer reads records by their
// headers, so it may pass records whose producer died between its commit
// and its position store, and a producer stores its position before every
// load of the consumer position, so it never commits more than
// capacity-8 bytes past what it last stored (docs/layout.md, "Header-commit
// rings"). Anything else is damage: ok is false.
func (r *Ring) span(p, c uint64) (depth uint64, ahead, ok bool) {
	if p%Align != 0 || c%Align != 0 {
		return 0, false, false
	}
	if d := p - c; d <= r.capacity {
		return d, false, true
	}
	if r.polled && c-p <= r.capacity-Align {
		return 0, true, true
	}
	return 0, false, false
}

// raiseHighWater raises the high watermark to depth if it is higher. Called
// on slow paths only (a reload of the other side's position).
func (r *Ring) raiseHighWater(depth uint64) {
	hw := word(r.region, offHighWater)
	for {
		cur := hw.Load()
		if depth <= cur || hw.CompareAndSwap(cur, depth) {
			return
		}
	}
}

// intent loads slot k's intent: the position it reserves from and the
// reservation's length. The owner stores the length, then the position; a
// read that straddles an update is retried (a bounded number of times: a
// live owner rewriting its intent is alive, which is all a torn read could
// then mislead about).
func (r *Ring) intent(k int) (pos, n uint64) {
	base := r.SlotOffset(k)
	wp, wn := word(r.region, base+slotIntentPos), word(r.region, base+slotIntentLen)
	for range 100 {
		p1 := wp.Load()
		n = wn.Load()
		if wp.Load() == p1 {
			return p1, n
		}
	}
	return wp.Load(), n
}

// WaitPoint is one side's waiting words: the consumer's (waiting for data)
// or the producers' (waiting for room). Package ipc runs the protocol; this
// package only places the words.
type WaitPoint struct {
	// Seq is the futex word: a waker bumps it, then wakes.
	Seq *atomic.Uint32
	// Parked is non-zero while a waiter may be asleep (or about to be).
	Parked *atomic.Uint32
	// Parks counts the times a waiter went to sleep.
	Parks *atomic.Uint64
	// Wakeups counts the wake system calls made.
	Wakeups *atomic.Uint64
}

func (r *Ring) waitPoint(line uint64) WaitPoint {
	return WaitPoint{
		Seq:     word32(r.region, line+waitSeq),
		Parked:  word32(r.region, line+waitParked),
		Parks:   word(r.region, line+waitParks),
		Wakeups: word(r.region, line+waitWakeups),
	}
}

// ConsumerWait returns the words the consumer sleeps on when the ring is empty.
func (r *Ring) ConsumerWait() WaitPoint { return r.waitPoint(offConsWait) }

// ProducerWait returns the words producers sleep on when the ring is full.
func (r *Ring) ProducerWait() WaitPoint { return r.waitPoint(offProdWait) }

// Modes returns the control words that override the producers' and the
// consumer's wait mode (0: as each was configured).
func (r *Ring) Modes() (producers, consumer *atomic.Uint32) {
	return word32(r.region, offProdMode), word32(r.region, offConsMode)
}

// lowerPressure clears the soft pressure level when depth has fallen to the
// low level (or the levels were switched off). Called by the consumer when
// it loads the producer position, the moment it knows the depth exactly.
func (r *Ring) lowerPressure(depth uint64) {
	pw := word32(r.region, offPressure)
	old := pw.Load()
	if old&PressureDepth == 0 {
		return
	}
	high, low := word(r.region, offPressureHigh).Load(), word(r.region, offPressureLow).Load()
	if (high == 0 || depth <= low) && pw.CompareAndSwap(old, old&^PressureDepth) {
		word(r.region, offPressureChanges).Add(1)
	}
}

// Pressure word bits.
const (
	// PressureDepth: the depth reached the high level (and has not fallen
	// to the low level since).
	PressureDepth = 1 << 0
	// PressureDelay: queueing delay stayed above the target for an interval.
	PressureDelay = 1 << 1
)

// SetTargetDelay sets the adaptive level of a ring created with
// timestamps: pressure rises when every record's queueing delay stays above
// target for interval, and falls at the first record below target. target
// 0 turns it off.
func (r *Ring) SetTargetDelay(target, interval time.Duration) error {
	if !r.ts && target != 0 {
		return fmt.Errorf("ring: a target delay needs a ring created with timestamps")
	}
	if target < 0 || interval < 0 {
		return fmt.Errorf("ring: target delay %v and interval %v must not be negative", target, interval)
	}
	word(r.region, offDelayInterval).Store(uint64(interval))
	word(r.region, offTargetDelay).Store(uint64(target))
	return nil
}

// SetWindow narrows (or, with 0, removes) the number of bytes producers
// may fill: they treat min(window, capacity) as the capacity from their
// next reservation on. A window smaller than a record stops that record.
func (r *Ring) SetWindow(bytes uint64) { word(r.region, offWindow).Store(bytes) }

// SetPressureLevels sets the depths, in bytes, at which pressure rises
// (high) and falls again (low, at most high): hysteresis. high 0 turns
// pressure off.
func (r *Ring) SetPressureLevels(high, low uint64) error {
	if high > r.capacity || low > high {
		return fmt.Errorf("ring: pressure levels high %d, low %d: want low <= high <= capacity %d", high, low, r.capacity)
	}
	word(r.region, offPressureLow).Store(low)
	word(r.region, offPressureHigh).Store(high)
	return nil
}

// Record is one record found by Peek.
type Record struct {
	Pos     uint64 // its position
	Type    uint8  // TypeData, TypePadding, TypePending or TypeNone
	Slot    int    // the producer slot in its header (MPSC)
	Payload []byte // a copy of a data record's payload
	Seq     uint64 // rings with sequences: a data record's sequence; else 0
	Time    int64  // rings with timestamps: a data record's commit time, Unix ns; else 0
}

// Peek walks up to max records from the consumer position without
// consuming anything, copying each data record's payload: a read-only
// inspection, safe on a read-only mapping and against live producers (a
// record being overwritten may show stale bytes; a position that moves
// while it walks ends the walk). It stops at the producer position, at an
// uncommitted MPSC reservation (which it reports), or at damage, which it
// returns as ErrCorrupt along with the records before it.
//
// In a header-commit ring it walks as that ring's consumer reads: from the
// consumer position along the committed headers to the first zero header
// (records a dead producer committed past the published producer position
// included), at most a capacity.
func (r *Ring) Peek(max int) ([]Record, error) {
	// The positions as a pair the ring was in: the consumer position loaded
	// again after the producer position, and the same (a producer position
	// loaded after a consumer position that then moved on can be more than
	// a capacity ahead of it without any damage).
	cw, pw := word(r.region, offConsumerPos), word(r.region, offProducerPos)
	var c, p uint64
	for tries := 0; ; tries++ {
		if tries == 100 {
			return nil, nil // the consumer kept moving: the walk ended before it began
		}
		c = cw.Load()
		p = pw.Load()
		if cw.Load() == c {
			break
		}
	}
	if _, _, ok := r.span(p, c); !ok {
		return nil, corruptf(offConsumerPos, "positions producer %d, consumer %d are inconsistent (capacity %d)", p, c, r.capacity)
	}
	end := p
	if r.polled {
		end = c + r.capacity
	}
	var out []Record
	for pos := c; pos != end && len(out) < max; {
		i := pos & (r.capacity - 1)
		h := word(r.data, i).Load()
		t := headerType(h)
		rec := Record{Pos: pos, Type: t, Slot: int(h >> 32 & 0xffff)}
		if t == TypeNone && h != 0 {
			if cw.Load() != c {
				return out, nil // the consumer moved: the walk read space being reused
			}
			return out, corruptf(r.dataOff+i, "record header %#016x has type 0 but is not zero", h)
		}
		if t == TypeNone && r.polled {
			if d := p - pos; d != 0 && d <= r.capacity && cw.Load() == c {
				// Below the published position every header is committed:
				// the consumer would wait here for ever.
				return out, corruptf(r.dataOff+i, "record header at position %d, below the producer position %d, is zero", pos, p)
			}
			return out, nil // nothing more is committed
		}
		if t == TypeNone || t == TypePending {
			if r.kind == SPSC {
				if cw.Load() != c {
					return out, nil // the consumer moved: the walk read space being reused
				}
				return out, corruptf(r.dataOff+i, "record header %#016x is not committed in an spsc ring", h)
			}
			return append(out, rec), nil
		}
		t, length, size, ok := r.decodeRecord(h, i, end-pos)
		if !ok {
			if cw.Load() != c {
				return out, nil // the consumer moved: the walk read space being reused
			}
			return out, corruptf(r.dataOff+i, "record header %#016x (length %d) is invalid", h, length)
		}
		if t == TypeData {
			j := i + HeaderSize + r.extra
			rec.Payload = append([]byte(nil), r.data[j:j+length]...)
			if r.seqs {
				rec.Seq = binary.LittleEndian.Uint64(r.data[i+r.seqOff:])
			}
			if r.ts {
				rec.Time = int64(binary.LittleEndian.Uint64(r.data[i+r.tsOff:]))
			}
			out = append(out, rec)
		}
		pos += size
	}
	return out, nil
}

// ResetHighWater sets the high watermark to the current depth, starting a
// new observation period (ringctl reset).
func (r *Ring) ResetHighWater() {
	c := word(r.region, offConsumerPos).Load()
	p := word(r.region, offProducerPos).Load()
	d, _, _ := r.span(p, c) // 0 if damaged
	word(r.region, offHighWater).Store(d)
}

// ConsumerHeartbeat stores the time in the consumer's heartbeat word.
func (r *Ring) ConsumerHeartbeat(nowNanos int64) { word(r.region, offConsBeat).Store(uint64(nowNanos)) }
