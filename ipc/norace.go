//go:build !race

package ipc

// raceChecks is off outside -race builds: useGuard's methods compile to
// nothing, so the hot paths pay nothing for the check.
const raceChecks = false
