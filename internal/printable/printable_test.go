package printable

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckAndQuote(t *testing.T) {
	for _, tc := range []struct {
		in, quoted string
		bad        string // in Check's error; "" if safe
	}{
		{"orders", "orders", ""},
		{".hidden", ".hidden", ""},
		{"zäh-日本", "zäh-日本", ""},
		{"two words", "two words", ""},
		{"a\x1b[31mb", `"a\x1b[31mb"`, "U+001B at byte 1"},
		{"line\nforged", `"line\nforged"`, "U+000A at byte 4"},
		{"del\x7f", `"del\x7f"`, "U+007F"},
		{"c1\u0085", `"c1\u0085"`, "U+0085"},
		{"\u202egnp.exe", `"\u202egnp.exe"`, "U+202E at byte 0"},
		{"zero\u200bwidth", `"zero\u200bwidth"`, "U+200B"},
		{"nb\u00a0sp", `"nb\u00a0sp"`, "U+00A0"},
		{"bad\xffutf8", `"bad\xffutf8"`, "not valid UTF-8 (0xff) at byte 3"},
		{`say "hi"`, `"say \"hi\""`, ""},
		{" padded", `" padded"`, ""},
		{"", `""`, ""},
	} {
		err := Check(tc.in)
		if tc.bad == "" {
			require.NoError(t, err, "%q", tc.in)
		} else {
			require.ErrorContains(t, err, tc.bad, "%q", tc.in)
		}
		require.Equal(t, tc.quoted, Quote(tc.in), "%q", tc.in)
	}
	require.Equal(t, "a b", Label("a b"))
	require.Equal(t, `"\xff"`, Label("\xff"))
}
