// Package sample is what the exports command's test counts: 6 consts
// (OnLinux on Linux), 3 vars, 2 funcs, 4 types, 5 methods: 20.
package sample

import "fmt"

// Exported constants: A, B, C (iota), D, E; not x.
const (
	A = iota
	B
	C
	x
)

const D, E = 1, 2

// Exported variables: V, W, ErrX; not _ or v.
var (
	V, v = 1, 2
	W    int
	_    = fmt.Sprint
	ErrX = fmt.Errorf("x")
)

// Exported types: T (its fields are not counted), I (its methods are
// not), G, Alias; not hidden.
type (
	T struct {
		Field  int
		Field2 string
		hidden
	}
	I interface {
		M()
		N() int
	}
	G[K comparable, V any] struct{ m map[K]V }
	hidden                 struct{}
)

type Alias = T

// Functions: F, New; not f.
func F()         {}
func New() *T    { return &T{} }
func f()         {}
func (T) Value() {}

func (t *T) Pointer()        {}
func (t *T) unexported()     {}
func (g *G[K, V]) Get(k K) V { return g.m[k] }
func (g G[K, _]) Len() int   { return len(g.m) }
func (h hidden) Promoted()   {} // a method of an unexported type
func (T) Parenthesised()     {}
