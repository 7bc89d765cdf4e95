package fuzz

import (
	"os"
	"testing"
)

func readFile(tb testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
