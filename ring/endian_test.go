package ring_test

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBigEndianRefused: package ring does not build for a big-endian
// machine, whose atomic words would not follow the little-endian layout,
// and the compiler's message names the reason; it builds for little-endian
// ones. (Checked with go/build and go/types, not a cross-compilation.)
func TestBigEndianRefused(t *testing.T) {
	files := func(arch string) []string {
		ctx := build.Default
		ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", arch, false
		pkg, err := ctx.ImportDir(".", 0)
		require.NoError(t, err, arch)
		return pkg.GoFiles
	}
	for _, arch := range []string{"s390x", "ppc64", "mips", "mips64", "sparc64"} {
		require.Contains(t, files(arch), "endian_big.go", "%s is big-endian", arch)
	}
	for _, arch := range []string{"amd64", "arm64", "riscv64", "ppc64le", "mips64le", "loong64", "386", "arm"} {
		require.NotContains(t, files(arch), "endian_big.go", "%s is little-endian", arch)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "endian_big.go", nil, 0)
	require.NoError(t, err)
	_, err = (&types.Config{}).Check("ring", fset, []*ast.File{f}, nil)
	require.ErrorContains(t, err, "undefined: shmring_refuses_big_endian_machines_segments_are_little_endian_see_docs_layout_md")
}
