package ring

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDecodeRecord: the one header check, for committed records and for
// pending headers (Recover's), with the checks every reader relies on.
func TestDecodeRecord(t *testing.T) {
	r := (&Ring{capacity: 1024, maxMessage: 128, slots: 2, seqs: true}).withExtras() // 8 bytes of extras
	data, pad, pend := makeHeader(10, 1, TypeData), makeHeader(1000, 0, TypePadding), makeHeader(10, 1, TypePending)
	for _, tc := range []struct {
		name    string
		h, i    uint64
		room    uint64
		pending bool
		ok      bool
		size    uint64
	}{
		{"data", data, 0, 1024, false, true, 32},
		{"padding of any length", pad, 0, 1024, false, true, 1008},
		{"zero", 0, 0, 1024, false, false, 0},
		{"pending is not committed", pend, 0, 1024, false, false, 0},
		{"reserved bits", data | 1<<56, 0, 1024, false, false, 0},
		{"unknown type", makeHeader(10, 0, 4), 0, 1024, false, false, 0},
		{"data above the maximum message", makeHeader(129, 0, TypeData), 0, 1024, false, false, 0},
		{"beyond room", data, 0, 24, false, false, 0},
		{"past the end of the data area", data, 1000, 1024, false, false, 0},
		{"pending", pend, 0, 1024, true, true, 32},
		{"pending of a slot the ring lacks", makeHeader(10, 2, TypePending), 0, 1024, true, false, 0},
		{"pending with reserved bits", pend | 1<<56, 0, 1024, true, false, 0},
		{"pending above the maximum message", makeHeader(129, 1, TypePending), 0, 1024, true, false, 0},
		{"pending beyond room", pend, 0, 24, true, false, 0},
		{"data is not pending", data, 0, 1024, true, false, 0},
		{"padding is not pending", pad, 0, 1024, true, false, 0},
		{"zero is not pending", 0, 0, 1024, true, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ok bool
			var size uint64
			if tc.pending {
				_, size, ok = r.decodePending(tc.h, tc.i, tc.room)
			} else {
				_, _, size, ok = r.decodeRecord(tc.h, tc.i, tc.room)
			}
			require.Equal(t, tc.ok, ok)
			if ok {
				require.Equal(t, tc.size, size)
			}
		})
	}
}
