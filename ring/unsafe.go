package ring

import (
	"sync/atomic"
	"unsafe"
)

// This file is the only one in package ring that imports unsafe.
//
// A region is a []byte that is either Go heap memory (tests, in-process use)
// or a shared mapping made by package shm. word turns an 8-aligned offset in
// it into an *atomic.Uint64. That is legal because:
//   - atomic.Uint64 is a struct whose only non-zero-size field is a uint64, so
//     a pointer to 8 aligned bytes is a valid *atomic.Uint64 for the atomic
//     instructions, which is all we use it for;
//   - the offset is checked against len(region) and the base alignment is
//     checked by Format and Attach, so the word lies inside the region and
//     never straddles a cache line;
//   - the region outlives every pointer made from it: a heap region is kept
//     alive by these interior pointers, and a mapping is unmapped only after
//     the Producer and Consumer made from it are closed (package ipc's rule).
//
// No Go pointer is ever stored into the region; only offsets and integers.

// word returns the 64-bit word at off. It panics (a bug of ours, never a
// result of region contents) if off is out of range or misaligned: every
// caller passes a layout constant or an index already checked.
func word(region []byte, off uint64) *atomic.Uint64 {
	if off%8 != 0 || off+8 > uint64(len(region)) {
		panic("ring: word offset out of range")
	}
	return (*atomic.Uint64)(unsafe.Pointer(&region[off]))
}

// dataWord returns the 64-bit word of a ring's data area at index
// i&(len(data)-8), with no bounds check: the fast paths' header load
// (read_plain.go, read_one.go) and store (spsc.go), which pass a masked
// position, 8-aligned and below len(data), for which that index is i
// itself. Whatever i is, the word lies
// inside data and is 8-aligned: data is a Ring's data area, whose length
// is its capacity, a power of two of at least MinCapacity (Attach checks
// it), so len(data)-8 has the low three bits clear and the AND keeps the
// index at most len(data)-8; its first byte is 8-aligned (the region's is,
// and the data offset is a multiple of the line size).
func dataWord(data []byte, i uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(data)), i&(uint64(len(data))-8)))
}

// dataBytes returns n bytes of a ring's data area from index
// j&(len(data)-1), length and capacity n, with no bounds check: the fast
// paths' payloads (the copy in of spsc.go's TryWrite, batch.go's
// WriteBatch and mpsc.go's tryWriteShared; the delivery of read_one.go's
// TryRead and read_plain.go's ReadBatch, whose positions are their own,
// not a caller's as Next's are), whose callers have checked that the
// record lies inside the data area
// (j+n <= len(data): the record's size within the bytes to the end of the
// data area, and n at most the maximum message, so the sum cannot
// overflow). Whatever j is, the first byte lies inside data (len(data) is a
// power of two, so the AND keeps the index below it; j == len(data), an
// empty payload ending the data area, becomes 0 rather than a pointer past
// the end); the length is the caller's check, as for the slice expression
// it replaces.
func dataBytes(data []byte, j, n uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(data)), j&(uint64(len(data))-1))), n)
}

// copySmall copies src, of 16 to 64 bytes, to dst, of at least len(src)
// bytes, with 8-byte loads and stores of its first and last 16 or 32
// bytes (overlapping in the middle when the length is not twice that),
// inline: the fast write paths' copy of a small payload, for which
// runtime.memmove costs a call and a size dispatch (issue 17,
// docs/benchmarks.md). Every load comes before every store, so it is a
// copy even if src and dst overlap. The caller checks the lengths: 16 <=
// len(src) <= 64 (smallCopy), len(dst) >= len(src) (dataBytes gives it
// exactly len(src)); within them every access lies inside src or dst.
// The words need no alignment on amd64, the one architecture that uses it
// (copyInline: amd64 without -race; the race detector's builds copy with
// memmove, which it knows).
func copySmall(dst, src []byte) {
	n := uintptr(len(src))
	s, d := unsafe.Pointer(unsafe.SliceData(src)), unsafe.Pointer(unsafe.SliceData(dst))
	if n >= 32 {
		a, b := *(*words4)(s), *(*words4)(unsafe.Add(s, n-32))
		*(*words4)(d), *(*words4)(unsafe.Add(d, n-32)) = a, b
		return
	}
	a, b := *(*words2)(s), *(*words2)(unsafe.Add(s, n-16))
	*(*words2)(d), *(*words2)(unsafe.Add(d, n-16)) = a, b
}

// words4 and words2 are 32 and 16 bytes as a struct of words, which the
// compiler keeps in registers (an array of more than one element it
// copies through memory, or with a call of memmove).
type (
	words4 struct{ a, b, c, d uint64 }
	words2 struct{ a, b uint64 }
)

// smallCopy reports whether the fast write paths copy n bytes with
// copySmall: 16 <= n <= 64 (one comparison), where copyInline is set.
func smallCopy(n uint64) bool { return copyInline && n-16 <= 64-16 }

// storePlain stores v to w with an ordinary store instruction (a MOV on
// amd64), no fence, no lock prefix: publish on amd64 (publish_amd64.go says
// why that is a release store there, and when it is used). w is a word of a
// region (word), so the store is aligned and not torn.
//
//lint:ignore U1000 used by publish_amd64.go only (amd64 without -race)
func storePlain(w *atomic.Uint64, v uint64) { *(*uint64)(unsafe.Pointer(w)) = v }

// aligned reports whether the region's first byte is 8-aligned.
func aligned(region []byte) bool {
	return len(region) > 0 && uintptr(unsafe.Pointer(&region[0]))%8 == 0
}

// word32 returns the 32-bit word at off (4-aligned): the futex words, which
// the kernel reads as 32 bits. No location is ever accessed with both widths.
func word32(region []byte, off uint64) *atomic.Uint32 {
	if off%4 != 0 || off+4 > uint64(len(region)) {
		panic("ring: word32 offset out of range")
	}
	return (*atomic.Uint32)(unsafe.Pointer(&region[off]))
}

// nanotime is the runtime's CLOCK_MONOTONIC reading in nanoseconds (a vDSO
// call, no system call): the same clock in every process on the machine,
// unlike the monotonic part of time.Now, which counts from process start.
// Records of a ring created with FlagTimestamps carry it.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64
