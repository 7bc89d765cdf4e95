package ring

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCopySmall: copySmall copies every length from 16 to 64 bytes as
// copy does, at every alignment of source and destination, touching no
// byte outside the destination's len(src) bytes; and smallCopy takes
// exactly those lengths where copyInline is set.
func TestCopySmall(t *testing.T) {
	src := make([]byte, 64+8)
	for i := range src {
		src[i] = byte(i*7 + 1)
	}
	for n := 16; n <= 64; n++ {
		for so := range 8 {
			for do := range 8 {
				got := bytes.Repeat([]byte{0xee}, 64+24)
				want := bytes.Clone(got)
				copySmall(got[8+do:8+do+n], src[so:so+n])
				copy(want[8+do:8+do+n], src[so:so+n])
				require.Equal(t, want, got, "n %d, source offset %d, destination offset %d", n, so, do)
			}
		}
	}
	for n := uint64(0); n <= 200; n++ {
		require.Equal(t, copyInline && n >= 16 && n <= 64, smallCopy(n), "n %d", n)
	}
	require.False(t, smallCopy(^uint64(0)))
}
