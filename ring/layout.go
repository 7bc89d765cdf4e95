package ring

import "github.com/shmring/shmring/internal/pad"

// The ring's region: a control block of LineSize-byte lines, then the data
// area. Every offset below is relative to the start of the region handed to
// [Format] or [Attach]; docs/layout.md is written from this file.
//
//	 0 ┌──────────────────────────────────────────────┐ line 0: descriptor (immutable)
//	   │ magic u64 · version u32 · kind u32           │
//	   │ capacity u64 · maxMessage u64 · dataOff u64   │
//	   │ flags u64 · slotsOff u64 · slots u32 · crc32c │
//	128├──────────────────────────────────────────────┤ line 1: producer position
//	256├──────────────────────────────────────────────┤ line 2: consumer position
//	384├──────────────────────────────────────────────┤ line 3: producer counters (SPSC)
//	512├──────────────────────────────────────────────┤ line 4: consumer counters
//	640├──────────────────────────────────────────────┤ line 5: consumer waiting (futex)
//	768├──────────────────────────────────────────────┤ line 6: producers waiting (futex)
//	896├──────────────────────────────────────────────┤ line 7: control (wait modes)
//	1024├─────────────────────────────────────────────┤ line 8: flow (window, pressure)
//	1152├─────────────────────────────────────────────┤ lines 9-10: queueing-delay histogram
//	1408├─────────────────────────────────────────────┤ line 11: delay totals, adaptive settings
//	1536├─────────────────────────────────────────────┤ line 12: routing counters (display)
//	1664├─────────────────────────────────────────────┤ line 13: out-bridge block (bridge.go)
//	1792├─────────────────────────────────────────────┤ line 14: in-bridge block (bridge.go)
//	1920├─────────────────────────────────────────────┤ line 15: doorbell words (doorbell.go)
//	2048├─────────────────────────────────────────────┤ lines 16..31: reserved, zero
//	4096├─────────────────────────────────────────────┤ MPSC only: producer slots,
//	   │ slot 0 │ slot 1 │ ... (LineSize each)        │ up to a 4096 boundary
//	dataOff├──────────────────────────────────────────┤ data area: capacity bytes
//	   │ record │ record │ ... │ padding               │
//	   └──────────────────────────────────────────────┘
//
// Ownership: who writes each shared word, in each kind of ring. Writers:
// creator (Format, before the region is published: shm publishes a segment
// only once its body is initialised), producer (the SPSC producer),
// producers (any MPSC producer: compare-and-swap on a shared word, plain
// stores only to its own slot), consumer, holder (whoever holds an MPSC
// drop-oldest ring's release lock: the consumer or a reclaiming producer),
// any (producers and the consumer, by compare-and-swap or atomic add; for
// a waiting line's seq, anyone who wakes its waiters),
// operator (any process with the segment open read-write: ringctl),
// bridge (package bridge: the out-bridge, the ring's consumer, stores
// line 13; an in-bridge, a producer, line 14; display words, bridge.go), and
// "slot" where the word lives in the producer's slot instead. Drop-oldest
// (FlagOverwrite) is SPSC or MPSC; header commit (FlagHeaderCommit) is SPSC
// without drop-oldest. Everyone may read every word.
//
//	word                           SPSC       MPSC       header-commit  drop-oldest SPSC | MPSC
//	line 0  descriptor             creator    creator    creator        creator   | creator
//	line 1  producer position      producer   producers  producer       producer  | producers
//	line 2  consumer position      consumer   consumer   consumer       any (CAS) | holder
//	line 3  msgs/bytes in, full    producer   slot       producer       producer  | slot
//	        events, drops, spins,
//	        overflowed, yields
//	line 3  seq begun, last seq    producer   slot       producer       producer  | slot
//	line 4  msgs/bytes out,        consumer   consumer   consumer       consumer  | consumer
//	        duplicates, spins,
//	        yields, heartbeat
//	line 4  high watermark         any (CAS)  any (CAS)  any (CAS)      any (CAS) | any (CAS)
//	        (ResetHighWater: operator stores)
//	line 4  lost, lost bytes       -          consumer   -              -         | consumer
//	line 4  zero end               creator    consumer   creator        creator   | holder
//	line 4  delivered seq          consumer   slot       consumer       consumer  | slot
//	line 4  lapped                 -          -          -              consumer  | consumer
//	line 5  seq                    any (add)  any (add)  any (add)      any (add) | any (add)
//	line 5  wake-ups               producer   producers  producer       producer  | producers
//	line 5  parked                 any        any        any            any       | any
//	line 5  parks                  consumer   consumer   consumer       consumer  | consumer
//	line 6  seq                    any (add)  any (add)  any (add)      any (add) | any (add)
//	line 6  wake-ups               consumer   consumer   consumer       consumer  | consumer
//	line 6  parked                 any        any        any            any       | any
//	line 6  parks                  producer   producers  producer       producer  | producers
//	line 7  wait-mode overrides    operator   operator   operator       operator  | operator
//	line 7  release lock           -          -          -              -         | any (CAS)
//	line 8  window, levels         operator   operator   operator       operator  | operator
//	line 8  pressure               any (CAS)  any (CAS)  any (CAS)      any (CAS) | any (CAS)
//	line 8  pressure changes       any (add)  any (add)  any (add)      any (add) | any (add)
//	9-11    delay histogram,       consumer   consumer   consumer       consumer  | consumer
//	        count, sum
//	line 11 target, interval       operator   operator   operator       operator  | operator
//	line 12 routed, spilled,       any (add)  any (add)  any (add)      any (add) | any (add)
//	        skipped (routers)
//	line 12 last flush (routers)   any        any        any            any       | any
//	line 13 out-bridge block       bridge     bridge     bridge         bridge    | bridge
//	line 14 in-bridge block        bridge     bridge     bridge         bridge    | bridge
//	slot    holder, heartbeat,     -          producers  -              -         | producers
//	        intent, counters,
//	        last seq
//	slot    lost, delivered seq    -          consumer   -              -         | consumer
//	data    record headers         producer   producers; producer       producer  | producers;
//	        and payloads                      consumer                       consumer, holder
//
// "-" is a word the kind never writes (zero); "creator" alone, one it
// writes only at Format. A waiting line's seq is bumped by whoever wakes
// its waiters: the other side, an operator changing the wait-mode
// overrides, a process closing its endpoints. Line 5's parked word is set
// by the consumer and cleared by whichever producer wakes it; line 6's the
// other way round. The operator's words (window, levels, target, wait-mode overrides) are
// also stored by the creator (ipc's options) and, the window, by the
// consumer's owner. An MPSC consumer zeroes the records it consumed and
// turns a dead producer's reservation into padding (compare-and-swap); in
// an MPSC drop-oldest ring the release lock's holder zeroes.
//
// How each word is written and what its stores publish:
//
//   - producer position: SPSC: the producer stores it (release) after
//     writing records: the store publishes every header and payload byte
//     below it. Header commit: the same, and also before every load of the
//     consumer position (which bounds how far a consumer may run past it).
//     MPSC: producers advance it by compare-and-swap to reserve; it
//     publishes nothing, each record's header commit does.
//   - consumer position: the consumer stores it (release) after it has read
//     the records below it, which hands the space back (MPSC: zeroed
//     first). Drop-oldest: moved by compare-and-swap (SPSC) or under the
//     release lock (MPSC, shared_overwrite.go) by producers too.
//   - record headers: atomic 64-bit stores. SPSC: published by the position
//     store (header commit: each committed header publishes its record,
//     the next header word being zeroed first). MPSC: a pending header,
//     then the payload, then the committed header (the release that
//     publishes the payload).
//   - sequence words: the last sequence begun (SPSC offSeqBegun, MPSC the
//     slot's slotLastSeq) is stored (release) before the store that commits
//     a record carrying a higher sequence; the SPSC last committed
//     (offLastSeq) after the position store; both loaded by the producer's
//     successor (Producer.initSeqs says why that order loses nothing).
//   - intent (MPSC slot): the producer stores intentLen then intentPos
//     (release) before its compare-and-swap on the producer position, so
//     that a reservation whose owner died before writing its header can
//     still be sized and skipped (docs/layout.md, "Skipping a dead
//     producer's reservation").
//   - counters: a single writer stores load+n (release) of its own word;
//     a load of one's own counter pairs with nothing; other parties load
//     them for display only. Words several parties add to use atomic add.
//   - waiting lines: package ipc's protocol (docs/layout.md, "Lines 5 and
//     6"): seq bumped by the waker before its wake, parked set
//     (sequentially consistent) by a waiter before it sleeps.
//   - flow: window and levels are loaded by producers on every reservation
//     (values, not hand-offs: they publish nothing); the pressure level is
//     raised by producers (CAS) when the depth they see reaches the high
//     level and lowered by the consumer (CAS) at or below the low level.
//   - routing counters (line 12): every router routing into the ring
//     (package route, in any process) atomically adds its counts to them
//     every sample and stores the time; they publish nothing, decide
//     nothing, and are display only (any value is possible: a co-tenant
//     may scribble on them).
//   - high watermark: raised by compare-and-swap on slow paths only (a
//     reload of the other side's position).
//
// Every acquire load of a word another party writes names, where it is
// made, the release store it pairs with.

const (
	// LineSize is the unit of separation between words written by different
	// parties: two cache lines, so that adjacent-line prefetch on x86 does
	// not make neighbours share.
	LineSize = 128

	// Magic is the first word of the descriptor: "SHMRING\x00" read as a
	// little-endian uint64, which lets a reader reject a region that is not
	// a ring before it trusts any other field.
	Magic uint64 = 0x00474e49524d4853

	// Version is the ring layout version this package writes for rings that
	// need no newer reader: every ring except an MPSC ring with
	// FlagOverwrite, which is written as VersionSharedOverwrite. This
	// package reads both. A version names the oldest layout a reader must
	// understand, so a release that reads only version 1 refuses an MPSC
	// drop-oldest ring with a version error instead of misreading it.
	Version uint32 = 1
	// VersionSharedOverwrite marks an MPSC ring with FlagOverwrite (its
	// consumer position is moved under the release lock, offReleaseLock, by
	// the consumer and by producers reclaiming the oldest records) and an
	// SPSC ring with FlagHeaderCommit.
	VersionSharedOverwrite uint32 = 2

	// HeaderSize is the size of a record header; records start on Align.
	HeaderSize = 8
	// Align is the alignment of every record and position.
	Align = 8

	// ControlSize is the size of the control block; the data area starts here.
	ControlSize = 4096

	// MinCapacity and MaxCapacity bound the data area (a power of two).
	MinCapacity = 1 << 10
	MaxCapacity = 1 << 46

	// MaxMessageLimit is the largest maximum message size any ring accepts:
	// the record length field is 32 bits, and a record must leave room for
	// others, so a message is also at most Capacity/8.
	MaxMessageLimit = 1<<31 - 1
)

// Descriptor (line 0) field offsets.
const (
	offMagic      = 0
	offVersion    = 8 // u32
	offKind       = 12
	offCapacity   = 16
	offMaxMessage = 24
	offDataOffset = 32
	offFlags      = 40
	offSlotsOff   = 48 // u64: region offset of the slot table, 0 in SPSC
	offSlotCount  = 56 // u32: number of producer slots, 0 in SPSC
	offChecksum   = 60 // u32, crc32c (Castagnoli) of bytes [0, 60)
	descSize      = 64
)

// Hot words and counters, each group on its own line.
const (
	offProducerPos = 1 * LineSize
	offConsumerPos = 2 * LineSize

	offProdCounters = 3 * LineSize
	offMsgsIn       = offProdCounters + 0
	offBytesIn      = offProdCounters + 8
	offFullEvents   = offProdCounters + 16
	offDrops        = offProdCounters + 24
	offSpins        = offProdCounters + 32
	offOverflowed   = offProdCounters + 40 // messages handed to an overflow route
	offLastSeq      = offProdCounters + 48 // sequences: the last one committed, stored after the position store
	offYields       = offProdCounters + 56 // sched_yield calls of a producer waiting for room
	offSeqBegun     = offProdCounters + 64 // sequences: the highest written into a record, stored before its commit

	offConsCounters = 4 * LineSize
	offMsgsOut      = offConsCounters + 0
	offBytesOut     = offConsCounters + 8
	offHighWater    = offConsCounters + 16
	offLost         = offConsCounters + 24 // records of dead producers skipped
	offLostBytes    = offConsCounters + 32 // bytes those records occupied
	offZeroEnd      = offConsCounters + 40 // MPSC: end of the batch being zeroed, see Consumer
	offDelivSeq     = offConsCounters + 48 // SPSC sequences: the last one delivered
	offDuplicates   = offConsCounters + 56 // records discarded as already delivered
	offLapped       = offConsCounters + 64 // overwrite rings: reads discarded because the producer reclaimed the record
	offConsSpins    = offConsCounters + 72 // busy-wait iterations of the consumer waiting for data
	offConsYields   = offConsCounters + 80 // its sched_yield calls
	offConsBeat     = offConsCounters + 88 // its heartbeat, Unix ns, every second while attached (display)

	// Line 5: the consumer's waiting, line 6: the producers' waiting.
	offConsWait = 5 * LineSize
	offProdWait = 6 * LineSize
	waitSeq     = 0  // u32 futex word
	waitParked  = 4  // u32: a waiter may be asleep; wake it
	waitParks   = 8  // u64: times a waiter went to sleep
	waitWakeups = 16 // u64: wake system calls made for it
	waitEnd     = 24
	offControl  = 7 * LineSize
	offProdMode = offControl + 0 // u32: producers' wait mode override, 0 = as configured
	offConsMode = offControl + 4 // u32: the consumer's
	// u64, MPSC drop-oldest rings (version 2): who may move the consumer
	// position now: 0 nobody, releaseByConsumer, or producer slot k as k+1.
	offReleaseLock = offControl + 8
	offControlEnd  = offControl + 16

	// Line 8: flow control. Window and the pressure levels are set by the
	// consumer or an operator; the pressure level is raised by producers
	// and lowered by the consumer, both by compare-and-swap.
	offFlow            = 8 * LineSize
	offWindow          = offFlow + 0  // u64: bytes producers may fill, 0 = capacity
	offPressureHigh    = offFlow + 8  // u64: depth at which pressure rises, 0 = off
	offPressureLow     = offFlow + 16 // u64: depth at or below which it falls
	offPressure        = offFlow + 24 // u32: 0 none, 1 soft (above the high level)
	offPressureChanges = offFlow + 32 // u64: times the level changed (atomic add)
	offFlowEnd         = offFlow + 40

	// Lines 9 and 10: the queueing-delay histogram (rings created with
	// timestamps), 32 power-of-two buckets, written by the consumer.
	offDelayHist = 9 * LineSize
	DelayBuckets = 32
	// Line 11: the delay totals and the adaptive level's settings.
	offDelay         = 11 * LineSize
	offDelayCount    = offDelay + 0  // u64: records measured
	offDelaySum      = offDelay + 8  // u64: their delays, nanoseconds
	offTargetDelay   = offDelay + 16 // u64: target delay, ns (0: adaptive level off)
	offDelayInterval = offDelay + 24 // u64: how long the delay must stay above target, ns
	offDelayEnd      = offDelay + 32

	// Line 12: routing counters, added to by every router (package route)
	// that routes into the ring, in whatever process: display only.
	offRoute        = 12 * LineSize
	offRouteRouted  = offRoute + 0  // u64: messages routers wrote to this ring (atomic add)
	offRouteSpilled = offRoute + 8  // u64: messages keyed to this ring that routers sent to another (atomic add)
	offRouteSkipped = offRoute + 16 // u64: times a message passed this ring over, out of the rotation (atomic add)
	offRouteFlushed = offRoute + 24 // u64: Unix ns of the last router's flush into this line (store)
	offRouteEnd     = offRoute + 32
	endOfDefined    = 13 * LineSize

	// SlotsOffset is where the slot table of an MPSC ring starts.
	SlotsOffset = ControlSize
	// DefaultSlots is the number of producer slots of an MPSC ring when the
	// configuration does not say; MaxSlots bounds it (the header's slot field
	// is 16 bits).
	DefaultSlots = 64
	MaxSlots     = 1 << 12

	// ProducerLine and ConsumerLine are the region offsets of the lines
	// holding the two positions. Package ipc takes its role locks on these
	// ranges (LineSize bytes each) of the segment file.
	ProducerLine = offProducerPos
	ConsumerLine = offConsumerPos
)

// Producer slot (MPSC), one LineSize line each, at SlotsOffset+i*LineSize.
const (
	slotPID        = 0  // u64: process ID of the holder, in its own PID namespace (a hint, see slotPIDNS)
	slotStartTime  = 8  // u64: holder's start time, clock ticks since boot (/proc/PID/stat field 22)
	slotHeartbeat  = 16 // u64: Unix nanoseconds, refreshed by the holder every second
	slotIntentPos  = 24 // u64: position the holder is reserving from
	slotIntentLen  = 32 // u64: bytes of that reservation (padding included)
	slotMsgsIn     = 40 // u64: messages (counted just before each commit)
	slotBytesIn    = 48 // u64: payload bytes
	slotFullEvents = 56
	slotDrops      = 64
	slotSpins      = 72
	slotLost       = 80  // u64: this slot's records skipped as dead; written by the consumer
	slotOverflowed = 88  // u64: messages handed to an overflow route
	slotLastSeq    = 96  // u64: sequences: the highest the holder wrote into a record, stored before that record's commit
	slotDelivSeq   = 104 // u64: sequences: the last one of this slot delivered; written by the consumer
	slotYields     = 112 // u64: sched_yield calls while waiting for room
	// u64: the holder's PID namespace, the inode number of its
	// /proc/self/ns/pid; 0 unknown (a holder that predates the field, or
	// could not read it). PID and start time name a process only to an
	// observer in this same namespace; to any other they mean nothing.
	slotPIDNS = 120
	slotEnd   = 128
)

// Descriptor flags.
const (
	// FlagTimestamps: every data record carries, between its header and
	// its payload, the 8-byte CLOCK_MONOTONIC time (ns) of its commit, and
	// the consumer measures each record's queueing delay.
	FlagTimestamps = 1 << 0
	// FlagSequences: every data record carries, after the timestamp if
	// any, an 8-byte sequence number of its producer; the consumer discards
	// a record whose sequence is at or below the last it delivered from
	// that producer (retries after a crash are delivered once).
	FlagSequences = 1 << 1
	// FlagOverwrite: producers may reclaim the oldest records
	// when the ring is full (DropOldest) by advancing the consumer position
	// with compare-and-swap; the consumer then copies each record out,
	// checks it was not reclaimed meanwhile, and releases with
	// compare-and-swap.
	FlagOverwrite = 1 << 2
	// FlagHeaderCommit (SPSC, layout version 2): the consumer finds
	// committed records by their headers, not by the producer position.
	// Before it commits a record, the producer stores zero in the word
	// after it (the next header: the consumer reads it next), never fills
	// the ring's last word (so that word is free space), and writes a
	// wrap's padding after the record that follows it. The producer
	// position is still published, for everyone else.
	FlagHeaderCommit = 1 << 3
	// FlagDoorbell: every producer of the ring follows the doorbell rule
	// (doorbell.go; docs/layout.md, "Line 15"): when it wakes the
	// consumer and line 15 names a doorbell, it rings the doorbell. The
	// layout version does not change: the flag, which readers that do not
	// know it refuse, is the protection (as for FlagOverwrite on SPSC).
	FlagDoorbell = 1 << 4
	knownFlags   = FlagTimestamps | FlagSequences | FlagOverwrite | FlagHeaderCommit | FlagDoorbell
)

// Record header: one little-endian 64-bit word, stored and loaded atomically.
//
//	bits  0..31  payload length in bytes (not counting the header or padding)
//	bits 32..47  producer slot (MPSC; 0 in SPSC rings)
//	bits 48..55  type (see below)
//	bits 56..63  reserved, zero
//
// A record occupies align8(HeaderSize+length) bytes and never wraps: when it
// does not fit before the end of the data area, a padding record fills the
// tail and the record starts at index 0.
const (
	// TypeNone is zeroed memory: no record has been written here yet.
	TypeNone = 0
	// TypeData is a committed message.
	TypeData = 1
	// TypePadding is a committed record the consumer skips without delivering.
	TypePadding = 2
	// TypePending is a reservation whose payload is still being written (MPSC).
	TypePending = 3
)

// Kind selects the producer protocol of a ring.
type Kind uint32

const (
	// SPSC rings have one producer and one consumer.
	SPSC Kind = 1
	// MPSC rings have many producers, each in a slot, and one consumer.
	MPSC Kind = 2
)

// String returns "spsc", "mpsc", or "unknown" for any other value.
func (k Kind) String() string {
	switch k {
	case SPSC:
		return "spsc"
	case MPSC:
		return "mpsc"
	}
	return "unknown"
}

func makeHeader(length uint32, slot uint16, typ uint8) uint64 {
	return uint64(length) | uint64(slot)<<32 | uint64(typ)<<48
}

func headerLength(h uint64) uint64 { return h & 0xffffffff }
func headerType(h uint64) uint8    { return uint8(h >> 48) }
func headerSlot(h uint64) int      { return int(h >> 32 & 0xffff) }

// recordSize is the space a record with an n-byte payload occupies.
func recordSize(n uint64) uint64 { return (HeaderSize + n + Align - 1) &^ (Align - 1) }

// Compile-time checks: each constant below fails to compile ("constant
// overflows uint") if its invariant breaks. uint(-(x)) requires x == 0;
// uint(b - a) requires a <= b.
const (
	_ = uint(-(offProducerPos % LineSize)) // each hot word starts its own line
	_ = uint(-(offConsumerPos % LineSize))
	_ = uint(-(offProdCounters % LineSize))
	_ = uint(-(offConsCounters % LineSize))
	_ = uint(LineSize - descSize) // descriptor fits line 0
	_ = uint(LineSize - (offOverflowed + 8 - offProdCounters))
	_ = uint(LineSize - (offFlowEnd - offFlow))
	_ = uint(2*LineSize - DelayBuckets*8)
	_ = uint(LineSize - (offDelayEnd - offDelay))
	_ = uint(-(offRoute % LineSize))
	_ = uint(LineSize - (offRouteEnd - offRoute))
	_ = uint(-(offFlow % LineSize))
	_ = uint(LineSize - (offHighWater + 8 - offConsCounters))
	_ = uint(ControlSize - endOfDefined)
	_ = uint(-(offConsWait % LineSize))
	_ = uint(-(offProdWait % LineSize))
	_ = uint(LineSize - waitEnd)
	_ = uint(-(waitParks % 8))
	_ = uint(LineSize - (offControlEnd - offControl))
	_ = uint(-(ControlSize % LineSize))
	_ = uint(-(offChecksum % 4))
	_ = uint(LineSize - (offConsBeat + 8 - offConsCounters))
	_ = uint(LineSize - (offYields + 8 - offProdCounters))
	_ = uint(LineSize - (offSeqBegun + 8 - offProdCounters))
	_ = uint(LineSize - slotEnd)
	_ = uint(-(SlotsOffset % LineSize))
	_ = uint(-(offMsgsIn % 8)) // 64-bit words 8-aligned
	_ = uint(-(offHighWater % 8))
	_ = uint(-(offSpins % 8))
	_ = uint(-(LineSize - pad.Size)) // Go structs padded as the segment's lines
)
