// Package pad allocates structs that no other heap object shares a cache
// line with.
//
// Inside one process (goroutines, or a ring over a plain byte slice) a
// ring's producer and consumer structs come from the same heap, often side
// by side: a ring.Producer and an ipc.Consumer fell in the same size class
// and were allocated next to each other. Then one side's per-message stores
// would evict the lines the other side reads on every message, the false
// sharing the segment's layout avoids with its 128-byte lines.
// docs/benchmarks.md, "False sharing", has the measurement.
package pad

// Size is the padding on each side: 128 bytes rather than 64 because
// adjacent-line prefetchers move lines in pairs (the segment's LineSize).
const Size = 128

// New returns a pointer to a zero T with Size bytes of padding before and
// after it, inside one allocation (the pointer keeps it all alive).
//
// The padding is outside T, not fields of it: leading pad fields would move
// every field of T to offsets of 128 and more, which on amd64 take 4-byte
// displacements in every instruction that touches them; outside, T's
// layout and code are untouched.
func New[T any]() *T {
	box := new(struct {
		_ [Size]byte
		v T
		_ [Size]byte
	})
	return &box.v
}
