package ring

// Slot words the damage tests write.
const (
	SlotIntentPos = slotIntentPos
	SlotIntentLen = slotIntentLen
)

// LoadWord loads the 64-bit word at region offset off atomically.
func LoadWord(region []byte, off uint64) uint64 { return word(region, off).Load() }
