package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCount: every kind of declaration counted or left out as documented,
// on testdata/sample (whose comments say why each one is or is not).
func TestCount(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"-v", "-max", "20", "testdata/sample"}, &out, &errOut), errOut.String())
	require.Equal(t, strings.Join([]string{
		"const A", "const B", "const C", "const D", "const E", "const OnLinux",
		"var ErrX", "var V", "var W",
		"func F", "func New",
		"type Alias", "type G", "type I", "type T",
		"method (*G).Get", "method (*T).Pointer", "method G.Len", "method T.Parenthesised", "method T.Value",
		"testdata/sample: 20 exported identifiers (6 consts, 3 vars, 2 funcs, 4 types, 5 methods)",
	}, "\n")+"\n", out.String())
	require.Empty(t, errOut.String())
}

// TestLimit: over -max the command exits 1 and says so; without -v it
// prints the total line only.
func TestLimit(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"-max", "19", "testdata/sample"}, &out, &errOut))
	require.Equal(t, "testdata/sample: 20 exported identifiers (6 consts, 3 vars, 2 funcs, 4 types, 5 methods)\n", out.String())
	require.Contains(t, errOut.String(), "exports 20 identifiers, over the limit of 19")
}

// TestErrors: a directory without a package, or extra arguments, exit 2.
func TestErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run([]string{"testdata/none"}, &out, &errOut))
	require.Contains(t, errOut.String(), "exports: testdata/none")
	require.Equal(t, 2, run([]string{"a", "b"}, &out, &errOut))
	require.Equal(t, 2, run([]string{"-max", "x"}, &out, &errOut))
}
