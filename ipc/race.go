//go:build race

package ipc

// raceChecks turns on useGuard: in -race builds a Producer or Consumer used
// by two goroutines at once panics, naming the calls, before the second
// touches the ring.
const raceChecks = true
