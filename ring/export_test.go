package ring

// FormatAt is the test-only hook that starts both positions at start, so a
// test can run a ring through the 2^64 wrap of its positions.
func FormatAt(region []byte, c Config, start uint64) error { return formatAt(region, c, start) }

// RecordSize exposes recordSize to tests.
func RecordSize(n uint64) uint64 { return recordSize(n) }

// Region offsets tests corrupt.
const (
	OffProducerPos = offProducerPos
	OffConsumerPos = offConsumerPos
	OffCapacity    = offCapacity
	OffVersion     = offVersion
	OffChecksum    = offChecksum
)
