package pad

import (
	"slices"
	"testing"
	"unsafe"
)

// TestNewKeepsNeighboursAway: the structs New returns lie at least Size
// bytes apart, whatever the allocator puts next to them.
func TestNewKeepsNeighboursAway(t *testing.T) {
	type hot struct{ a, b, c uint64 }
	var ps []*hot
	var addrs []uintptr
	for range 1000 {
		p := New[hot]()
		if *p != (hot{}) {
			t.Fatal("not zero")
		}
		ps = append(ps, p)
		addrs = append(addrs, uintptr(unsafe.Pointer(p)))
	}
	slices.Sort(addrs)
	for i := 1; i < len(addrs); i++ {
		if gap := addrs[i] - (addrs[i-1] + unsafe.Sizeof(hot{})); gap < 2*Size {
			t.Fatalf("two structs %d bytes apart, want at least %d", gap, 2*Size)
		}
	}
	_ = ps
}
