// Package units parses and prints the sizes and durations that ringctl
// reads from users: plain bytes or a unit (64KiB, 1MiB, 64K, 10MB), and Go
// durations or plain seconds.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// sizeUnits maps a unit suffix (lower-cased) to its multiplier.
var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1000 * 1000 * 1000 * 1000,
	"p": 1 << 50, "pib": 1 << 50, "pb": 1000 * 1000 * 1000 * 1000 * 1000,
}

// ParseSize reads "4096", "64KiB", "1MiB", "1.5GiB", "64K", "10MB". A
// fraction of a unit is rounded to the nearest byte; plain bytes must be
// whole.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q: want bytes or a number with a unit, e.g. 4096, 64KiB, 1MiB, 2GiB", s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || (n != 0 && n > math.MaxUint64/mult) {
			return 0, fmt.Errorf("invalid size %q: out of range", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %v", s, err)
	}
	v := f * float64(mult)
	if v >= math.MaxUint64 {
		return 0, fmt.Errorf("invalid size %q: out of range", s)
	}
	if mult == 1 && v != math.Trunc(v) {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	// A fraction of a unit (as FormatSize prints, "1.1 KiB") is rounded to
	// the nearest byte.
	v = math.Round(v)
	return uint64(v), nil
}

// FormatSize prints n in the largest binary unit that keeps it readable:
// "512 B", "64 KiB", "1.5 MiB".
func FormatSize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v := float64(n)
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f %s", v, units[u])
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}

// ParseDuration reads a Go duration ("500ms", "2s", "1m30s") or a plain
// number of seconds ("5", "0.5").
func ParseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if !(f >= 0 && f <= 1e9) { // also refuses NaN, which ParseFloat accepts
			return 0, fmt.Errorf("invalid duration %q: want 0 to 1e9 seconds", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 500ms, 2s, 1m or a number of seconds", s)
	}
	return d, nil
}

// BinaryAlternative returns, for a size written with a decimal (SI) unit
// such as "64KB" or "1mb", the same number with the binary unit ("64KiB",
// "1MiB") and its value, so that a caller can ask "did you mean 64KiB?".
// ok is false for any other form.
func BinaryAlternative(s string) (alt string, value uint64, ok bool) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" || len(unit) != 2 || unit[1] != 'b' || sizeUnits[unit] == 0 || sizeUnits[unit] == 1 {
		return "", 0, false
	}
	alt = num + strings.ToUpper(unit[:1]) + "iB"
	v, err := ParseSize(alt)
	if err != nil {
		return "", 0, false
	}
	return alt, v, true
}

// SizeFlag is a flag.Value holding a size.
type SizeFlag struct {
	Value uint64 // the size in bytes
	Given bool   // whether the flag was given
	Raw   string // as the user wrote it
}

func (f *SizeFlag) String() string {
	if f == nil || !f.Given {
		return ""
	}
	return FormatSize(f.Value)
}

func (f *SizeFlag) Set(s string) error {
	v, err := ParseSize(s)
	if err != nil {
		return err
	}
	f.Value, f.Given, f.Raw = v, true, s
	return nil
}

// DurationFlag is a flag.Value holding a duration.
type DurationFlag struct {
	Value time.Duration
	Given bool // whether the flag was given
}

func (f *DurationFlag) String() string {
	if f == nil || !f.Given {
		return ""
	}
	return f.Value.String()
}

func (f *DurationFlag) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	f.Value, f.Given = v, true
	return nil
}
