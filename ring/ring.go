// Ring: the validated, immutable view of a ring that Attach returns.

package ring

// Ring is a validated view of a ring's descriptor in a region, with the
// Liveness it was attached with. It is immutable and safe for concurrent
// use; it makes Producers and Consumers.
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
	polled     bool           // FlagHeaderCommit: the consumer polls headers and zeroes
	bell       bool           // FlagDoorbell: producers follow the doorbell rule (doorbell.go)
	live       Liveness       // nil: nobody is known dead (AttachWithLiveness)
	hook       func(step int) // test only: called in a release (stepReleaseMarked)
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

// ZeroMark returns the MPSC zeroing mark (docs/layout.md, line 4, region
// 552: the end of the batch a consumer is zeroing), loaded with acquire;
// for observers that judge it (package ops, with ZeroMarkFits), never for
// the consumer's own use. Untrusted, like every word of the segment.
func (r *Ring) ZeroMark() uint64 { return word(r.region, offZeroEnd).Load() }

// ZeroMarkFits reports whether a zeroing mark z is consistent with the
// consumer position c and the producer position p (docs/layout.md,
// "Reading"): z = c (no release left unfinished), or z a multiple of 8 at
// most p-c past c.
func ZeroMarkFits(z, c, p uint64) bool { return z == c || (z-c <= p-c && z%Align == 0) }

// DataOffset returns the region offset of the data area.
func (r *Ring) DataOffset() uint64 { return r.dataOff }

// Liveness tells recovery whether the process holding a role is alive. It
// is handed over once, at AttachWithLiveness; package ipc answers from the
// role and slot locks, which the kernel releases when a holder dies. It is
// asked by Consumer.Recover (is the owner of an uncommitted reservation
// alive?) and, in an MPSC drop-oldest ring, by any party waiting for the
// release lock (is its holder alive?), on that party's goroutine, possibly
// concurrently; it must not block for long. Each method must answer true
// when in doubt: a live holder taken for dead has its reservation skipped,
// or its release lock taken, under it.
type Liveness interface {
	// SlotAlive reports whether the holder of MPSC producer slot i
	// (0 <= i < Slots) is alive.
	SlotAlive(i int) bool
	// ConsumerAlive reports whether the holder of the consumer role is
	// alive.
	ConsumerAlive() bool
}
