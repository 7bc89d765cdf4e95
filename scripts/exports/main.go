// Command exports counts the exported identifiers of a Go package, the
// measure of issue 14's target for package ipc (at most 60): package-level
// constants, variables, functions and types, and the methods declared on
// exported types. Struct fields and interface methods are not counted, nor
// methods promoted from embedded types, nor anything in _test.go files or
// in files the current build context (GOOS, GOARCH, no extra tags) leaves
// out.
//
// Usage:
//
//	go run ./scripts/exports [-v] [-max N] [DIR]
//
// DIR is the package's directory (default ./ipc). It prints the total with
// a breakdown by kind; -v first lists each identifier, one a line ("func
// Create", "method (*Ring).Close"). With -max N it exits 1 if the total is
// over N. scripts/exports.sh runs it from the repository's root.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command; it returns the exit code: 0, 1 over -max, 2 on an
// error.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("exports", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "list every exported identifier, one a line")
	limit := fs.Int("max", -1, "exit 1 if the package exports more than `N` identifiers (negative: no limit)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: exports [-v] [-max N] [DIR]  (DIR: a package directory, default ./ipc)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	dir := "./ipc"
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	ids, err := exported(dir)
	if err != nil {
		fmt.Fprintf(stderr, "exports: %v\n", err)
		return 2
	}
	byKind := map[string]int{}
	for _, id := range ids {
		byKind[id.kind]++
		if *verbose {
			fmt.Fprintf(stdout, "%s %s\n", id.kind, id.name)
		}
	}
	fmt.Fprintf(stdout, "%s: %d exported identifiers (%d consts, %d vars, %d funcs, %d types, %d methods)\n",
		dir, len(ids), byKind["const"], byKind["var"], byKind["func"], byKind["type"], byKind["method"])
	if *limit >= 0 && len(ids) > *limit {
		fmt.Fprintf(stderr, "exports: %s exports %d identifiers, over the limit of %d: unexport, merge or move some (run with -v to list them)\n",
			dir, len(ids), *limit)
		return 1
	}
	return 0
}

// ident is one exported identifier: its kind (const, var, func, type,
// method) and its name ("Ring", "(*Ring).Close").
type ident struct{ kind, name string }

// exported returns the exported identifiers of the package in dir, sorted
// by kind and then name.
func exported(dir string) ([]ident, error) {
	pkg, err := build.Default.ImportDir(dir, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	fset := token.NewFileSet()
	var ids []ident
	for _, name := range append(pkg.GoFiles, pkg.CgoFiles...) {
		f, err := parser.ParseFile(fset, filepath.Join(pkg.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ids = append(ids, fileExports(f)...)
	}
	order := map[string]int{"const": 0, "var": 1, "func": 2, "type": 3, "method": 4}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].kind != ids[j].kind {
			return order[ids[i].kind] < order[ids[j].kind]
		}
		return ids[i].name < ids[j].name
	})
	return ids, nil
}

// fileExports returns the exported identifiers one file declares.
func fileExports(f *ast.File) []ident {
	var ids []ident
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.GenDecl:
			kind := strings.ToLower(d.Tok.String()) // const, var, type (import has no names)
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							ids = append(ids, ident{kind, n.Name})
						}
					}
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						ids = append(ids, ident{kind, s.Name.Name})
					}
				}
			}
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			if d.Recv == nil {
				ids = append(ids, ident{"func", d.Name.Name})
				continue
			}
			if recv, ptr := receiver(d.Recv.List[0].Type); ast.IsExported(recv) {
				if ptr {
					recv = "(*" + recv + ")"
				}
				ids = append(ids, ident{"method", recv + "." + d.Name.Name})
			}
		}
	}
	return ids
}

// receiver returns the name of a method's receiver type and whether it is
// a pointer: T, *T, T[P], *T[P, Q].
func receiver(expr ast.Expr) (name string, ptr bool) {
	if star, ok := expr.(*ast.StarExpr); ok {
		expr, ptr = star.X, true
	}
	for {
		switch e := expr.(type) {
		case *ast.ParenExpr:
			expr = e.X
		case *ast.IndexExpr:
			expr = e.X
		case *ast.IndexListExpr:
			expr = e.X
		case *ast.StarExpr: // (*T) written with parentheses
			expr, ptr = e.X, true
		case *ast.Ident:
			return e.Name, ptr
		default:
			return "", ptr
		}
	}
}
