package spin

// Pause executes the PAUSE instruction: a hint to the processor that this is
// a spin-wait loop, which saves power and lets a sibling hyper-thread run.
func Pause()
