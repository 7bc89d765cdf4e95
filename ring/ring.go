package ring

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// Config fixes a ring's geometry at Format time.
type Config struct {
	// Kind is SPSC (the only kind implemented so far).
	Kind Kind
	// Capacity is the size of the data area in bytes: a power of two between
	// MinCapacity and MaxCapacity.
	Capacity uint64
	// MaxMessage is the largest payload a record may carry. Zero means
	// Capacity/8; it may not exceed Capacity/8 nor MaxMessageLimit.
	MaxMessage uint64
}

// withDefaults fills zero fields and checks the result.
func (c Config) withDefaults() (Config, error) {
	if c.Kind == 0 {
		c.Kind = SPSC
	}
	if c.Kind != SPSC {
		return c, fmt.Errorf("ring: kind %v is not supported by this version (supported: spsc): %w", c.Kind, ErrIncompatible)
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

// Size returns the region size a ring with this configuration needs.
func Size(c Config) (uint64, error) {
	c, err := c.withDefaults()
	if err != nil {
		return 0, err
	}
	return ControlSize + c.Capacity, nil
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
	if uint64(len(region)) < ControlSize+c.Capacity {
		return fmt.Errorf("ring: region of %d bytes is smaller than the %d a ring of capacity %d needs", len(region), ControlSize+c.Capacity, c.Capacity)
	}
	if start%Align != 0 {
		return fmt.Errorf("ring: start position %d is not %d-aligned", start, Align)
	}
	clear(region[:ControlSize+c.Capacity])
	d := region[:descSize]
	binary.LittleEndian.PutUint64(d[offMagic:], Magic)
	binary.LittleEndian.PutUint32(d[offVersion:], Version)
	binary.LittleEndian.PutUint32(d[offKind:], uint32(c.Kind))
	binary.LittleEndian.PutUint64(d[offCapacity:], c.Capacity)
	binary.LittleEndian.PutUint64(d[offMaxMessage:], c.MaxMessage)
	binary.LittleEndian.PutUint64(d[offDataOffset:], ControlSize)
	binary.LittleEndian.PutUint64(d[offFlags:], 0)
	binary.LittleEndian.PutUint32(d[offChecksum:], crc32.Checksum(d[:offChecksum], castagnoli))
	word(region, offProducerPos).Store(start)
	word(region, offConsumerPos).Store(start)
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
	if v := binary.LittleEndian.Uint32(d[offVersion:]); v != Version {
		return nil, fmt.Errorf("ring: layout version at offset %d is %d, this build reads %d; use a shmring release that reads version %d: %w", offVersion, v, Version, v, ErrIncompatible)
	}
	kind := Kind(binary.LittleEndian.Uint32(d[offKind:]))
	if kind != SPSC {
		return nil, fmt.Errorf("ring: kind at offset %d is %d (%v), this build supports spsc: %w", offKind, uint32(kind), kind, ErrIncompatible)
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
	if off := binary.LittleEndian.Uint64(d[offDataOffset:]); off != ControlSize {
		return nil, fmt.Errorf("ring: data offset at offset %d is %d, want %d: %w", offDataOffset, off, ControlSize, ErrCorrupt)
	}
	if f := binary.LittleEndian.Uint64(d[offFlags:]); f != 0 {
		return nil, fmt.Errorf("ring: flags at offset %d are %#x, this build knows none: %w", offFlags, f, ErrIncompatible)
	}
	if uint64(len(region)) < ControlSize+capacity {
		return nil, fmt.Errorf("ring: region of %d bytes is too small for capacity %d (needs %d): %w", len(region), capacity, ControlSize+capacity, ErrCorrupt)
	}
	return &Ring{
		region:     region,
		data:       region[ControlSize : ControlSize+capacity],
		kind:       kind,
		capacity:   capacity,
		maxMessage: maxMsg,
	}, nil
}

// Kind returns the ring's kind.
func (r *Ring) Kind() Kind { return r.kind }

// Capacity returns the size of the data area in bytes.
func (r *Ring) Capacity() uint64 { return r.capacity }

// MaxMessage returns the largest payload a record may carry.
func (r *Ring) MaxMessage() uint64 { return r.maxMessage }

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
	}
	// The consumer position was loaded first, so in a healthy ring the
	// difference cannot be negative; clamp anyway, the region is untrusted.
	if d := s.ProducerPos - s.ConsumerPos; d <= r.capacity {
		s.Depth = d
	} else if int64(d) < 0 {
		s.Depth = 0
	} else {
		s.Depth = r.capacity
	}
	return s
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
