//go:build never

package sample

// NeverBuilt is not counted: its file is excluded by a build tag.
func NeverBuilt() {}
