// Configuration: Config and its validation, Size, Format, and Attach's
// validation of a descriptor read from the region.

package ring

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"

	"github.com/shmring/shmring/internal/units"
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
	// Doorbell sets FlagDoorbell: every producer follows the doorbell rule
	// (line 15, doorbell.go), so that a wait set can sleep on one doorbell
	// for many rings. Readers that do not know the flag refuse the ring.
	Doorbell bool
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
		return c, capacityError(c.Capacity)
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = min(c.Capacity/8, MaxMessageLimit)
	}
	if c.MaxMessage > c.Capacity/8 || c.MaxMessage > MaxMessageLimit {
		return c, fmt.Errorf("ring: max message %d exceeds capacity/8 (%d) or %d; use a larger capacity", c.MaxMessage, c.Capacity/8, MaxMessageLimit)
	}
	return c, nil
}

// capacityError says why capacity is refused, in bytes and binary units,
// and which capacity to use instead.
func capacityError(capacity uint64) error {
	size := func(n uint64) string { return fmt.Sprintf("%d bytes (%s)", n, units.FormatSize(n)) }
	var advice string
	switch {
	case capacity < MinCapacity:
		advice = "use " + size(MinCapacity) + " or more"
	case capacity > MaxCapacity:
		advice = "use " + size(MaxCapacity) + " or less"
	default: // between the bounds, not a power of two
		up := uint64(1) << bits.Len64(capacity)
		advice = "round it to " + size(up>>1) + " or " + size(up)
	}
	return fmt.Errorf("ring: capacity %s must be a power of two from %s to %s; %s", size(capacity), size(MinCapacity), size(MaxCapacity), advice)
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
	if c.Doorbell {
		flags |= FlagDoorbell
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
//
// The view has no Liveness: nobody is known dead, so Consumer.Recover
// refuses (ErrInvalid) and a holder of an MPSC drop-oldest ring's release
// lock is never displaced. A party whose peers can die attaches with
// AttachWithLiveness.
func Attach(region []byte) (*Ring, error) { return AttachWithLiveness(region, nil) }

// AttachWithLiveness is Attach with the Liveness that recovery asks
// whether the holders of roles are alive (nil: as Attach).
func AttachWithLiveness(region []byte, live Liveness) (*Ring, error) {
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
		bell:       flags&FlagDoorbell != 0,
		live:       live,
	}).withExtras(), nil
}
