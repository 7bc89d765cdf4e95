// Package printable decides whether a name (a ring's file name or path) is
// safe to print on a terminal as it is, and escapes it when it is not.
//
// A name is safe when it is valid UTF-8 and every rune is printable in the
// sense of unicode.IsPrint: letters, marks, numbers, punctuation, symbols
// and the ASCII space. That leaves out control characters (C0, DEL, C1:
// terminal escape sequences, newlines that forge output lines), format
// characters (bidirectional overrides that reorder what follows, zero-width
// characters that make two names look alike), line and paragraph
// separators, other spaces, private-use and unassigned code points.
package printable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Check returns nil if s is safe to print, else an error naming the first
// rune that is not and its byte offset.
func Check(s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Errorf("has a byte that is not valid UTF-8 (%#02x) at byte %d", s[i], i)
			}
		}
		if !unicode.IsPrint(r) {
			return fmt.Errorf("has the unprintable character %U at byte %d", r, i)
		}
	}
	return nil
}

// Quote returns s unchanged if it is safe to print and cannot be mistaken
// for a quoted name (no double quote or backslash, no leading or trailing
// space), else s as a Go string literal, with every unprintable rune and
// invalid byte escaped ("a\x1b[31mb", "\u202egnp.x").
func Quote(s string) string {
	if Check(s) == nil && !strings.ContainsAny(s, `"\`) && strings.TrimSpace(s) == s && s != "" {
		return s
	}
	return strconv.Quote(s)
}

// Label returns s unchanged if it is safe to print, else s as a Go string
// literal: a form that is valid UTF-8 (as a Prometheus label value must
// be) and shows no control character, for names made outside shmring.
func Label(s string) string {
	if Check(s) == nil {
		return s
	}
	return strconv.Quote(s)
}
