package units

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"0": 0, "4096": 4096, "64KiB": 64 << 10, "64kib": 64 << 10, "1MiB": 1 << 20, "1M": 1 << 20,
		"2GiB": 2 << 30, "1.5KiB": 1536, "1.1KiB": 1126, "10MB": 10_000_000, "1kB": 1000, "7B": 7, "1TiB": 1 << 40,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "KiB", "1.2.3MiB", "1 parsec", "-1", "0.3B", "99999999999999999999", "20000000TiB"} {
		_, err := ParseSize(bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, "64 KiB", FormatSize(64<<10))
	require.Equal(t, "1.5 MiB", FormatSize(3<<19))
	require.Equal(t, "100 B", FormatSize(100))
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"500ms": 500 * time.Millisecond, "2s": 2 * time.Second, "1.5": 1500 * time.Millisecond, "0": 0} {
		got, err := ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"soon", "-1s", "-3", "NaN", "nan", "Inf", "-Inf"} {
		_, err := ParseDuration(bad)
		require.Error(t, err, bad)
	}
}

func TestBinaryAlternative(t *testing.T) {
	for _, tc := range []struct {
		in, alt string
		v       uint64
		ok      bool
	}{
		{"64KB", "64KiB", 64 << 10, true},
		{"64kb", "64KiB", 64 << 10, true},
		{"1MB", "1MiB", 1 << 20, true},
		{"2gb", "2GiB", 2 << 30, true},
		{"64KiB", "", 0, false},
		{"64K", "", 0, false},
		{"4096", "", 0, false},
		{"12B", "", 0, false},
	} {
		alt, v, ok := BinaryAlternative(tc.in)
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.alt, alt, tc.in)
		require.Equal(t, tc.v, v, tc.in)
	}
}
