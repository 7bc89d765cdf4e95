package ring

// Steps of a write at which SetSeqHook's function is called.
const (
	StepSeqStored = stepSeqStored // a record's sequence written (and stored as begun), nothing committed
	StepCommit    = stepCommit    // a record (an SPSC batch) committed, nothing after that store
)

// SetSeqHook installs fn, called with the step at each point of p's real
// write code named by a Step constant (a test stops a producer there, as a
// kill would).
func SetSeqHook(p *Producer, fn func(step int)) { p.hook = fn; p.setFast() }

// SetSeqBegun stores the SPSC producer's begun sequence (line 3) directly.
func SetSeqBegun(r *Ring, seq uint64) { word(r.region, offSeqBegun).Store(seq) }
