package shm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTempNameRandom: Create's temporary names take 16 lowercase hex digits
// from getrandom, in the form TempName recognises, and differ draw to draw.
func TestTempNameRandom(t *testing.T) {
	require.Equal(t, ".orders.creating-00017fa5ff0910be", tempName("orders", [8]byte{0x00, 0x01, 0x7f, 0xa5, 0xff, 0x09, 0x10, 0xbe}))
	seen := map[string]bool{}
	for range 64 {
		rnd, err := tempRandom()
		require.NoError(t, err)
		name := tempName("orders", rnd)
		seg, ok := TempName(name)
		require.True(t, ok, name)
		require.Equal(t, "orders", seg)
		require.False(t, seen[name], "a repeated draw: %s", name)
		seen[name] = true
	}
}
