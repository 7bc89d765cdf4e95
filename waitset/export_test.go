package waitset

import "time"

// LateWakes returns the number of sleeps that ran out although a member had
// a message: missed wake-ups.
func LateWakes() uint64 { return lateWakes.Load() }

// BreakParkProtocol makes a parking set skip its re-check after it
// announces itself, and sets the sleep slice; restore undoes it. Tests
// only, not concurrently with others.
func BreakParkProtocol(skipRecheck bool, slice time.Duration) (restore func()) {
	testSkipRecheck, testParkSlice = skipRecheck, slice
	return func() { testSkipRecheck, testParkSlice = false, 0 }
}

// NoWaitV makes sets poll as on a kernel without futex_waitv; restore
// undoes it.
func NoWaitV() (restore func()) {
	testNoWaitV = true
	return func() { testNoWaitV = false }
}

// Parks returns the set's sleeps.
func (s *Set) Parks() uint64 { return s.parks.Load() }

// Barriers returns the membarriers the set issued.
func (s *Set) Barriers() uint64 { return s.barriers.Load() }

// Poke ends the set's sleep as Join, Leave and Close do.
func (s *Set) Poke() { s.poke() }
