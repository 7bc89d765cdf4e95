package ring

// decodeRecord is the one check of a record's header that every reader of
// the data area makes: the consumers, Peek, SkipPadding, Recover (through
// decodePending), the producers' drop-oldest reclaim walks and the
// header-commit producer's resume. h is the header loaded at data index i,
// room the bytes the record may occupy from there (what is published, or
// what the producer wrote). It returns the record's type (TypeData or
// TypePadding), payload length and size, or ok false when h cannot be a
// committed record there: another type, reserved bits set, a data length
// above the maximum message, a size beyond room or past the end of the data
// area. Headers that are not committed yet (the zero word, TypePending) are
// the caller's to tell apart first, where they are legal. It is inlined
// into the read and write paths: keep it under the inlining budget.
func (r *Ring) decodeRecord(h, i, room uint64) (typ uint8, length, size uint64, ok bool) {
	typ, length = headerType(h), headerLength(h)
	extra, most := uint64(0), uint64(1<<32) // padding: no extras, any length
	if typ == TypeData {
		extra, most = r.extra, r.maxMessage
	}
	size = (HeaderSize + extra + length + Align - 1) &^ (Align - 1)
	// h>>48 is the type with the reserved bits above it: 1 or 2 only for a
	// data or padding record whose reserved bits are zero.
	ok = h>>48-1 < 2 && length <= most && size <= room && i+size <= r.capacity
	return typ, length, size, ok
}

// decodePending is decodeRecord for a pending header (TypePending: an MPSC
// reservation being written, which Recover examines). The header is
// checked as the data record it announces: its type bits turned from
// pending (3) into data (1) by flipping bit 1, which turns only a pending
// header into data (data becomes 3 and is refused, padding becomes 0 and is
// refused, zero becomes padding and is told apart by its type). Its slot
// must be one of the ring's.
func (r *Ring) decodePending(h, i, room uint64) (slot int, size uint64, ok bool) {
	typ, _, size, ok := r.decodeRecord(h^(TypePending^TypeData)<<48, i, room)
	slot = headerSlot(h)
	return slot, size, ok && typ == TypeData && slot < r.slots
}
