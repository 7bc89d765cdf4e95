package ring

// Slot words the damage tests write.
const (
	SlotIntentPos = slotIntentPos
	SlotIntentLen = slotIntentLen
)

// LoadWord loads the 64-bit word at region offset off atomically.
func LoadWord(region []byte, off uint64) uint64 { return word(region, off).Load() }

// WriteBatchReading is WriteBatch's SPSC loop (the real reserve and put
// for each record, one position store at the end; no counters or
// sequences) with read called after each record: a consumer reading while
// the batch is written, deterministically.
func WriteBatchReading(p *Producer, msgs [][]byte, read func()) (int, error) {
	n := 0
	var err error
	for _, m := range msgs {
		var pos uint64
		if pos, err = p.reserve(uint64(len(m))); err != nil {
			break
		}
		p.put(pos, m)
		n++
		read()
	}
	if n > 0 {
		publish(p.prodPos, p.pos)
		if err == ErrFull {
			err = nil
		}
	}
	return n, err
}
