package waitset

// Stats are a set's counters since New, and its members' (see MemberStats).
// Sleeps, Wakeups, Spurious and Timeouts count the futex sleeps of the
// set's reading goroutine; PeerDead and Dropped its reports of members
// (Read's MemberErrors).
type Stats struct {
	// Sleeps counts the times the set slept (parked) on its members.
	Sleeps uint64
	// Wakeups counts the sleeps that a member's futex word or a doorbell
	// ended (a producer of a member woke the set).
	Wakeups uint64
	// DoorbellWakeups counts those of Wakeups that a doorbell ended (the
	// member is not known: the pass goes on in round-robin order).
	DoorbellWakeups uint64
	// Spurious counts the sleeps that ended before their time and found
	// nothing to deliver and nothing else to do: a signal, or a wake-up
	// left from an earlier sleep. Join, Leave, Close, a done context and a
	// member's ring closed are not counted.
	Spurious uint64
	// Timeouts counts the sleeps that ran their whole slice (100 ms, or 1
	// ms when the set polls: no futex_waitv or no membarrier). A sleep cut
	// short by the Read's context deadline and ended by it is not one (nor
	// Spurious): the deadline ended it.
	Timeouts uint64
	// DoorbellRestores and MissedWakeups are the sums of the members'
	// (MemberStats), over every member, present or gone.
	DoorbellRestores, MissedWakeups uint64
	// PeerDead counts the reports of a member with no producer (Read's
	// MemberErrors matching ipc.ErrPeerDead), over every member, present
	// or gone.
	PeerDead uint64
	// Dropped counts the members the set dropped because their ring was
	// closed or damaged (Read's other MemberErrors).
	Dropped uint64
	// Members has each member's counters, for the members now in the set
	// (Members' order).
	Members []MemberStats
}

// Stats returns the set's counters and its members'. Safe from any
// goroutine, a Read running or not; the counters are read one by one, not
// as one snapshot. It allocates the Members slice.
func (s *Set) Stats() Stats {
	st := Stats{
		Sleeps:           s.parks.Load(),
		Wakeups:          s.wakeups.Load(),
		DoorbellWakeups:  s.bellWakeups.Load(),
		Spurious:         s.spurious.Load(),
		Timeouts:         s.timeouts.Load(),
		PeerDead:         s.peerDead.Load(),
		Dropped:          s.dropped.Load(),
		DoorbellRestores: s.restores.Load(),
		MissedWakeups:    s.misses.Load(),
	}
	for _, m := range s.Members() {
		st.Members = append(st.Members, m.Stats())
	}
	return st
}
