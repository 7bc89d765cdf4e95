package waitset

import (
	"errors"
	"os"

	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// bell is one doorbell file of the set: the futex word the set sleeps on
// for every member with descriptor flag bit 4 in one directory
// (docs/layout.md, "Line 15: doorbell"; docs/waitset.md). The set creates
// it at the first such Join in its directory and removes it when its last
// member leaves, or at Close.
type bell struct {
	dir       string
	d         *shm.Doorbell
	w         ring.Bell
	users     int    // under s.mu: members (joined, queued or in the set) on it
	closed    bool   // by putBell (the reader, or with no Read running): unmapped
	announced bool   // the reader's: its parked flag may be set by the set
	epoch     uint64 // the reader's: the last sleep that slept on it
	seq       uint32 // the reader's: its seq as that sleep loaded it
}

// maxBells is how many doorbells (directories) one set has at most: with
// its own word, one futex_waitv of maxMembersAsleep words. A flagged member
// in a directory beyond them stays on its own word (line 15 at 0).
const maxBells = maxMembersAsleep - 1

var errTooManyBells = errors.New("waitset: the set has a doorbell in as many directories as one sleep can hold")

// bellFor returns the set's doorbell for dir, created (and leftovers of
// dead sets in dir removed) if the set has none there yet; nil, with the
// reason, if it cannot be made (the member then stays on its own word).
// Under s.mu.
func (s *Set) bellFor(dir string) (*bell, error) {
	for _, b := range s.bells {
		if b.dir == dir {
			b.users++
			return b, nil
		}
	}
	if len(s.bells) >= maxBells {
		// One sleep's futex_waitv holds the set's own word and every
		// doorbell: a doorbell beyond that would not be slept on while
		// its producers rang it, and not their members' own words.
		return nil, errTooManyBells
	}
	_, _ = shm.RemoveDeadDoorbells(dir) // a dead set's files; best effort
	d, err := shm.CreateDoorbell(dir, ring.FormatDoorbell, shm.Mode(s.bellMode))
	if err != nil {
		return nil, err
	}
	w, err := ring.AttachDoorbell(d.Mem(), d.ID())
	if err != nil {
		return nil, errors.Join(err, d.Close())
	}
	b := &bell{dir: dir, d: d, w: w, users: 1}
	s.bells = append(s.bells, b)
	return b, nil
}

// putBell drops a member's use of b, closing (and removing) b with its
// last. Under s.mu, with no sleep running.
func (s *Set) putBell(b *bell) error {
	b.users--
	if b.users > 0 {
		return nil
	}
	for i, x := range s.bells {
		if x == b {
			s.bells = append(s.bells[:i], s.bells[i+1:]...)
			break
		}
	}
	b.closed = true
	return b.d.Close()
}

// ringBell puts a joining member on the doorbell of its ring's directory:
// its ring has flag bit 4 (every producer rings the doorbell line 15
// names) and a directory (not a memfd). It stores the doorbell's id in line
// 15 (the set holds the consumer role). Under s.mu.
func (s *Set) ringBell(m *Member) {
	h := m.h
	if !h.Flagged || h.Dir == "" || s.noBell {
		return
	}
	b, err := s.bellFor(h.Dir)
	if err != nil {
		return // it stays on its own word (Stats: Doorbell 0)
	}
	if h.Enter() != nil {
		_ = s.putBell(b)
		return
	}
	m.bell, m.fails = b, h.Doorbell.Failures.Load()
	h.Doorbell.ID.Store(b.d.ID())
	m.bellID.Store(b.d.ID())
	h.Leave()
}

// unbell takes m off its doorbell: line 15's id is cleared if it is still
// the set's, and the doorbell closed with its last member. Under s.mu, by
// the reader or with no Read running, before m's consumer role is released.
func (s *Set) unbell(m *Member) error {
	b := m.bell
	if b == nil {
		return nil
	}
	m.bell = nil
	m.bellID.Store(0)
	if m.h.Enter() == nil {
		m.h.Doorbell.ID.CompareAndSwap(b.d.ID(), 0)
		m.h.Leave()
	}
	return s.putBell(b)
}

// demote moves a member whose producers could not ring its doorbell (line
// 15's failures moved: a producer failed to open or validate it, and woke
// line 5 instead), or whose wake-up went astray (missed), back to its own
// word for good; line 15's id becomes 0 whatever it holds, so that its
// producers wake line 5. The reader's.
func (s *Set) demote(m *Member) {
	s.mu.Lock()
	_ = s.unbell(m)
	m.noBell = true
	if m.h.Flagged && m.h.Enter() == nil {
		m.h.Doorbell.ID.Store(0) // the set holds the consumer role: line 15 is its
		m.h.Leave()
	}
	s.mu.Unlock()
}

// checkID makes sure a member's line 15 holds what the set stored there:
// its doorbell's id, or 0 for a member of a ring with flag bit 4 on its own
// word. Only the consumer-role holder (the set) stores line 15, so any other
// value was written by a co-tenant with write access to the ring; with it,
// producers would ring a doorbell nobody sleeps on (or fail to open one) and
// stop there. The set stores its value again and counts it
// (MemberStats.DoorbellRestores). It reports whether the member is still on
// its doorbell (line 15's failures did not move since it went on it). The
// reader's, when it prepares a sleep; a load per member with bit 4.
func (s *Set) checkID(m *Member) (onBell bool) {
	if !m.h.Flagged || m.h.Enter() != nil {
		return m.bell != nil
	}
	defer m.h.Leave()
	want := m.bellID.Load()
	if id := m.h.Doorbell.ID.Load(); id != want {
		m.h.Doorbell.ID.Store(want)
		m.restores.Add(1)
		s.restores.Add(1)
	}
	return m.bell != nil && m.h.Doorbell.Failures.Load() == m.fails
}

// closeBells closes every doorbell left (Close, after every member left).
func (s *Set) closeBells() error {
	var errList []error
	for _, b := range s.bells {
		b.closed = true
		errList = append(errList, b.d.Close())
	}
	s.bells = nil
	return errors.Join(errList...)
}

// bellModeOf is the doorbell files' mode: cfg's, else 0600.
func bellModeOf(m os.FileMode) os.FileMode {
	if m == 0 {
		return 0o600
	}
	return m.Perm()
}
