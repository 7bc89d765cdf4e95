package ipc

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// Kind is a ring's producer protocol. A string type: it prints itself.
// In a [Config] the zero Kind ("") means [SPSC]; [Stats].Kind is always
// SPSC or MPSC. Any other string is refused by [Create] with
// [io/fs.ErrInvalid].
type Kind string

// Ring kinds.
const (
	// SPSC rings have one producer and one consumer at a time.
	SPSC Kind = "spsc"
	// MPSC rings have up to Config.Producers producers at once, each in a
	// slot of its own, in any number of processes, and one consumer.
	MPSC Kind = "mpsc"
)

// ringKind returns the ring package's value for k ("" is SPSC).
func (k Kind) ringKind() (ring.Kind, error) {
	switch k {
	case "", SPSC:
		return ring.SPSC, nil
	case MPSC:
		return ring.MPSC, nil
	}
	return 0, fmt.Errorf("ipc: ring kind %q: want %q or %q: %w", string(k), SPSC, MPSC, errs.ErrInvalid)
}

// kindOf returns the Kind of a ring package kind.
func kindOf(k ring.Kind) Kind {
	if k == ring.MPSC {
		return MPSC
	}
	return SPSC
}

// defaultCapacity is the data area of a ring whose Config leaves Capacity 0.
const defaultCapacity = 1 << 20

// Config is what only creation decides: [Create] takes it, [Open] does not
// (an opened ring has the configuration it was created with; [Ring.Stats]
// reports it). The zero Config is a 1 MiB SPSC ring. A Config that cannot
// be made is refused with an error matching [io/fs.ErrInvalid] that says
// what is wrong.
type Config struct {
	// Kind is SPSC (the zero value) or MPSC.
	Kind Kind
	// Capacity is the data area in bytes: a power of two from 1 KiB to
	// 64 TiB (ring.MaxCapacity, 1<<46). 0: 1 MiB.
	//
	// Each message takes a record of its payload plus an overhead: an
	// 8-byte header, and E bytes of extras (8 with Sequences, 8 more with
	// Timestamps or TargetDelay: E is 0, 8 or 16), the whole rounded up to
	// a multiple of 8 (docs/layout.md, "Data area"). So N messages of S
	// bytes need about N × ((8 + E + S + 7) &^ 7) bytes: 100-byte messages
	// take 112 bytes each (128 with both Sequences and Timestamps), and a
	// 1 MiB ring holds about 9,362 of them. A record never wraps around the
	// end of the data area (the tail it does not fit in becomes padding),
	// so a ring may hold one record fewer than that.
	Capacity uint64
	// MaxMessage is the largest payload a message may have: at most
	// Capacity/8 (and 2 GiB − 1). 0: Capacity/8 (capped at 2 GiB − 1).
	// Its record is larger by the overhead described under Capacity.
	MaxMessage uint64
	// Producers is the number of MPSC producer slots, the most producers
	// attached at once (1 to 4096). 0: 64. An SPSC ring has none: leave it 0.
	Producers int
	// Sequences makes every record carry its producer's sequence number
	// (8 bytes per record). The consumer discards a record whose sequence
	// is at or below the last it delivered from that producer
	// (Stats.Duplicates), remembering it in the segment across consumer
	// restarts; a producer that restarts under the same ID resumes after
	// every sequence its predecessor may have committed
	// (SlotStats.NextSeq), and [Producer.InDoubt] names the messages to
	// resend after a crash: each, resent with its original sequence
	// ([Producer.WriteSeq]), is delivered once.
	Sequences bool
	// Timestamps makes every record carry its commit time (8 bytes, one
	// clock read per record), so that the consumer measures queueing delay:
	// Stats' delay histogram and the adaptive pressure level (TargetDelay).
	Timestamps bool
	// HeaderCommit makes an SPSC ring's consumer find messages by their
	// record headers instead of loading the producer's position: one cache
	// line less moves between the processes per message
	// (docs/benchmarks.md measures it). Ring layout version 2, which builds
	// that read only version 1 refuse. SPSC only; not with DropOldest.
	HeaderCommit bool
	// DropOldest creates a ring whose producers may use [DropOldest]
	// (newest wins). Its consumer copies each message out and releases it
	// with a compare-and-swap (SPSC) or under a release lock it shares with
	// reclaiming producers (MPSC) before delivering it, to stay safe from a
	// producer reclaiming what it reads. An MPSC one is ring layout version
	// 2: builds that read only version 1 refuse it with a version error.
	DropOldest bool
	// HighWater and LowWater are the depths, in bytes, at which the ring's
	// pressure rises (HighWater) and falls again (LowWater <= HighWater <=
	// Capacity): hysteresis, so that producers slowing down at the high
	// level (ProducerConfig.Throttle) do not flap. HighWater 0: off.
	HighWater uint64
	LowWater  uint64
	// TargetDelay turns on the adaptive pressure level (in the spirit of
	// CoDel): when every record's queueing delay stays above TargetDelay
	// for DelayInterval, pressure rises before the ring is full; the first
	// record under the target lowers it. It implies Timestamps. 0: off.
	TargetDelay   time.Duration
	DelayInterval time.Duration
	// Doorbell sets descriptor flag bit 4: every producer of the ring
	// follows the doorbell rule, so that a wait set (package waitset) that
	// has the ring as a member sleeps on one futex word, a doorbell file
	// in the ring's directory, for all its flagged members, instead of on
	// each member's own (docs/waitset.md). It costs a producer nothing
	// while nobody sleeps. Builds and C producers that do not know the
	// flag refuse the ring (ErrIncompatible). A memfd ring has no
	// directory and no doorbell: a set sleeps on its own word.
	Doorbell bool
	// Mode is the permission bits of the segment file. 0: 0600.
	Mode os.FileMode
	// Memfd makes an anonymous ring in a sealed memfd (memfd_create, sealed
	// against shrinking and growing) instead of a file: no file name, no
	// owner or mode to get wrong, and nobody can truncate it, so no reader
	// can meet SIGBUS. Processes share it by passing the descriptor over a
	// Unix socket: [Ring.Share] on one side, [Receive] on the other. The
	// name only labels the memfd (in /proc/PID/fd); WithDir and Mode do
	// not apply.
	Memfd bool
}

// ringConfig checks c and returns the ring package's configuration.
func (c Config) ringConfig() (ring.Config, error) {
	k, err := c.Kind.ringKind()
	if err != nil {
		return ring.Config{}, err
	}
	if c.Producers < 0 || c.TargetDelay < 0 || c.DelayInterval < 0 {
		return ring.Config{}, fmt.Errorf("ipc: producers %d, target delay %v and delay interval %v must not be negative: %w",
			c.Producers, c.TargetDelay, c.DelayInterval, errs.ErrInvalid)
	}
	rc := ring.Config{Kind: k, Capacity: c.Capacity, MaxMessage: c.MaxMessage, Slots: c.Producers,
		Timestamps: c.Timestamps || c.TargetDelay > 0, Sequences: c.Sequences,
		Overwrite: c.DropOldest, HeaderCommit: c.HeaderCommit, Doorbell: c.Doorbell}
	if rc.Capacity == 0 {
		rc.Capacity = defaultCapacity
	}
	return rc, nil
}

// options are what Option values set.
type options struct {
	shm      []shm.Option
	readOnly bool
}

// Option configures [Open], [Create] and [Remove]: where the name resolves
// and how the segment is trusted. Create refuses [WithReadOnly] with
// [io/fs.ErrInvalid].
type Option func(*options)

// WithDir resolves bare names (no slash) in dir instead of $SHMRING_DIR or
// /dev/shm.
func WithDir(dir string) Option { return func(o *options) { o.shm = append(o.shm, shm.Dir(dir)) } }

// WithTrustOwner lets Open map a segment owned by another user (by default
// it refuses one, with [io/fs.ErrPermission]).
func WithTrustOwner() Option {
	return func(o *options) { o.shm = append(o.shm, shm.TrustOwner()) }
}

// WithReadOnly opens a ring for inspection only ([Ring.Stats], and the
// reading tools of package ops): the segment is mapped read-only, and
// [Ring.Producer] and [Ring.Consumer] fail with an error matching
// [io/fs.ErrPermission] (and ops.ErrReadOnly, the same value), since
// taking a role writes the segment: open the ring without WithReadOnly to
// produce or consume. Create refuses it.
func WithReadOnly() Option {
	return func(o *options) { o.shm, o.readOnly = append(o.shm, shm.ReadOnly()), true }
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// Strategy is how a side waits: a producer for room, a consumer for data.
type Strategy uint8

const (
	// Hybrid spins (Wait.Spins busy-wait iterations), then yields
	// (Wait.Yields sched_yield calls), then parks: low latency when the
	// other side is quick, no CPU when it is not. The default. The spin
	// phase is skipped when GOMAXPROCS or the CPU count is 1 (spinning
	// cannot help: the other side cannot run meanwhile), as the Go
	// runtime's own locks do.
	Hybrid Strategy = iota
	// Spin busy-waits with a CPU pause instruction, yielding the processor
	// every 256 pauses so that a peer sharing the core still runs. Lowest
	// latency; one core per waiter.
	Spin
	// Yield gives the processor up (sched_yield) between attempts: less
	// CPU than Spin when the machine is busy, still a core when it is idle.
	Yield
	// Park sleeps on a futex in the segment until the other side wakes it.
	// The other side's fast path makes no system call unless a waiter has
	// said it is asleep, and then one wake per sleep, not per message.
	// Bound a wait with a context deadline.
	Park
)

// policy returns the wait loop's policy for s.
func (s Strategy) policy() (policy, error) {
	switch s {
	case Hybrid:
		return pHybrid, nil
	case Spin:
		return pSpin, nil
	case Yield:
		return pYield, nil
	case Park:
		return pPark, nil
	}
	return 0, fmt.Errorf("ipc: wait strategy %d: want Hybrid, Spin, Yield or Park: %w", uint8(s), errs.ErrInvalid)
}

// Wait is how a side waits: a [Producer] for room when a message does not
// fit (and its Full is the zero value), a [Consumer] for data when the ring
// is empty. One value describes both, so a program can share it. The zero
// Wait is Hybrid with every default.
type Wait struct {
	// Strategy is Hybrid (the zero value), Spin, Yield or Park.
	Strategy Strategy
	// Spins is the Hybrid busy-wait iterations before yielding. 0: 2000.
	// Skipped (0 spins) when GOMAXPROCS or the CPU count is 1, as read when
	// the Producer or Consumer is made.
	Spins int
	// Yields is the Hybrid sched_yield calls before parking. 0: 50.
	Yields int
	// PeerTimeout is how long the other side (the consumer, for a producer;
	// every producer, for a consumer) may be absent during a wait before
	// the wait returns [ErrPeerDead]: nobody is left to make room or to
	// write. 0: 1 s.
	PeerTimeout time.Duration
	// Hook, if set, is asked every few milliseconds while the wait spins
	// or yields, and between sleeps once it parks (a sleep lasts up to
	// 100 ms: to end one sooner from another goroutine, cancel the wait's
	// context), on the waiting goroutine: it sees the attempt, the time
	// waited and the ring's depth, and must not block. A nil error
	// keeps waiting. A producer's hook returning [ErrFull] drops the
	// message (counted as a drop; the write returns ErrFull); any other
	// error ends the wait and is returned, wrapped (a producer's message
	// is then not counted as dropped: the caller still has it).
	Hook func(WaitInfo) error
}

// Wait's defaults.
const (
	defaultHybridSpins = 2000
	defaultHybridYield = 50
	defaultPeerTimeout = time.Second
	defaultStallLimit  = time.Second
)

// waitSide returns the wait loop's state for w, defaults filled in: the
// policy its Strategy names, Hybrid's phases (no spinning on one CPU: see
// hybridPhases), the peer timeout and the hook. A negative count or
// duration, or an unknown Strategy, is ErrInvalid.
func (w Wait) waitSide(consumer bool) (waitSide, policy, error) {
	p, err := w.Strategy.policy()
	if err != nil {
		return waitSide{}, 0, err
	}
	if w.Spins < 0 || w.Yields < 0 || w.PeerTimeout < 0 {
		return waitSide{}, 0, fmt.Errorf("ipc: wait spins %d, yields %d and peer timeout %v must not be negative: %w",
			w.Spins, w.Yields, w.PeerTimeout, errs.ErrInvalid)
	}
	s := waitSide{peerTimeout: w.PeerTimeout, consumer: consumer, hook: w.Hook}
	if s.peerTimeout == 0 {
		s.peerTimeout = defaultPeerTimeout
	}
	s.hybridSpins, s.hybridYield = hybridPhases(w.Spins, w.Yields, singleCPU())
	return s, p, nil
}

// WaitInfo is what a wait hook sees at each check of a wait.
type WaitInfo struct {
	Attempt int           // waiting steps so far
	Waited  time.Duration // since the wait began
	Depth   uint64        // bytes in the ring now
}

// Full is what a [Producer] does when a message does not fit. The zero
// Full waits for room, as the producer's [Wait] says.
type Full uint8

const (
	// Drop returns [ErrFull] at once and counts the message in the ring's
	// Drops (Stats.Drops, SlotStats.Drops).
	Drop Full = 1
	// DropOldest makes room by reclaiming the oldest messages (newest
	// wins), counted as drops, in a ring created with Config.DropOldest:
	// for telemetry-like data where the latest value matters most. Its
	// consumer copies each message out and discards a read a producer
	// reclaimed meanwhile (Stats.Lapped), never delivering it torn; a
	// message is delivered or counted dropped, never both. In an MPSC ring
	// a producer gives up with ErrFull (counted) when the oldest message is
	// still being written or another live producer keeps reclaiming.
	// Claim is not covered: a full ring refuses a claim with ErrFull
	// (counted); nor is WriteSeq: a resend that does not fit is dropped
	// (ErrFull, counted) rather than reclaiming what may be its original.
	DropOldest Full = 2
)

// ProducerConfig configures a [Producer]; [Ring.Producer] takes a pointer,
// nil meaning every default (wait for room, Hybrid, the first free slot).
type ProducerConfig struct {
	// Full is what a write does when the message does not fit: wait (the
	// zero value, as Wait says), Drop or DropOldest.
	Full Full
	// Overflow, if set, receives a message that does not fit instead (on
	// the writing goroutine; it must not keep msg after it returns), counted
	// in Stats.Overflowed; its error is the write's. It may write the
	// message to another ring, a file, anywhere. Full is then ignored.
	Overflow func(msg []byte) error
	// Wait is how the producer waits for room.
	Wait Wait
	// Throttle makes the producer pause for this long after each write
	// while the ring's pressure is raised (see Config.HighWater and
	// Config.TargetDelay): the soft level of layered backpressure, below the
	// hard level (a full ring) where Full applies. 0: off.
	Throttle time.Duration
	// ID picks the MPSC producer slot: 0 takes the first free one; k (1 to
	// Config.Producers) takes slot k-1, so that a restarted producer gets
	// its slot, its sequences and its counters back. An SPSC ring has one
	// producer: 0 or 1.
	ID int
}

// ConsumerConfig configures a [Consumer]; [Ring.Consumer] takes a pointer,
// nil meaning every default.
type ConsumerConfig struct {
	// Wait is how the consumer waits for data.
	Wait Wait
	// StallLimit is the longest an MPSC consumer waits at a reservation
	// whose producer has died before it skips it (counted in Stats.Lost).
	// Liveness is checked from the first 100 µs of the stall on, at growing
	// intervals up to a quarter of the limit, so a dead producer is usually
	// skipped within a few milliseconds; a live producer is never skipped,
	// however slow. 0: 1 s.
	StallLimit time.Duration
	// Coalesce makes Read and Batch, after a batch smaller than their max
	// (the consumer has caught up with the producers), hold off for this
	// long before they look at the ring again, without touching the ring's
	// memory meanwhile. A consumer that catches up after every few messages
	// and polls at once takes the producers' cache lines away from them at
	// every poll; holding off lets them write many messages per transfer.
	// It trades latency (a message may wait this much longer) for
	// throughput (docs/benchmarks.md measures it). A full batch is never
	// held. 0: off.
	Coalesce time.Duration
	// Hold makes the consumer hold what it reads until [Consumer.Release]:
	// a Batch loop delivers messages and moves a read cursor kept in this
	// process, but hands nothing back to the producers; each Record's Pos
	// is what Release takes. The consumer position in the segment stays
	// the release point, so a consumer that closes or dies leaves what it
	// held in the ring, and its successor delivers it again (for a consumer
	// that releases only what it has finished with: at-least-once across
	// crashes). Held messages occupy the ring: they count in the depth,
	// pressure, window and high watermark, and a ring full of them stops
	// the producers until a Release (a Batch waiting then waits until its
	// context ends: release first). Read and TryRead return
	// [io/fs.ErrInvalid] on such a consumer (their callbacks get no
	// position to release); a ring created with DropOldest refuses Hold
	// ([io/fs.ErrInvalid] from [Ring.Consumer]): its producers reclaim the
	// oldest messages, which a held read would still hold.
	Hold bool
}

// singleCPU reports whether spinning cannot help: this process runs Go code
// on one thread at a time, or the machine has one CPU, so the other side
// cannot make progress while we spin. The runtime's own rule (its locks
// spin only when GOMAXPROCS and the CPU count are above 1).
func singleCPU() bool { return runtime.GOMAXPROCS(0) == 1 || runtime.NumCPU() == 1 }

// hybridPhases returns Hybrid's busy-wait iterations and sched_yield calls
// for a Wait's Spins and Yields (0: the defaults); on a single CPU
// (oneCPU) there is no spin phase.
func hybridPhases(spins, yields int, oneCPU bool) (int, int) {
	if spins == 0 {
		spins = defaultHybridSpins
	}
	if yields == 0 {
		yields = defaultHybridYield
	}
	if oneCPU {
		spins = 0
	}
	return spins, yields
}
