// Package fuzz holds shmring's native Go fuzz targets: everything that reads
// memory or input another party controls. Run one for a while with
//
//	go test -run '^$' -fuzz '^FuzzConsumer$' -fuzztime 10m ./fuzz
//
// or all of them with scripts/fuzz.sh. The seed corpus is checked in under
// testdata/fuzz; every crasher found becomes a file there, so plain
// `go test ./fuzz` replays it as a regression test.
package fuzz
