package waitset

import (
	"context"
	"fmt"
	"time"

	"github.com/shmring/shmring/internal/errs"
)

var (
	errNilFn      = fmt.Errorf("waitset: read: the callback is nil; pass a function that takes each message: %w", errs.ErrInvalid)
	errNilContext = fmt.Errorf("waitset: read: the context is nil; pass context.Background() to wait without a deadline: %w", errs.ErrInvalid)
	errConcurrent = fmt.Errorf("waitset: read: another Read of this set is running; a set has one reading goroutine: %w", errs.ErrInvalid)
	errDeadline   = fmt.Errorf("waitset: gave up waiting for data: the context's deadline passed: %w", context.DeadlineExceeded)
)

// Read waits until a member has a message, then delivers up to max
// messages to fn, round robin over the members from where the last Read
// stopped, at most Config.Budget from each member per turn, each with its
// Member. It returns how many it delivered. msg is valid only until fn
// returns (the space is then handed back to the ring's producers); fn runs
// on the calling goroutine and must not call Read, Leave or Close.
//
// It waits as Config.Wait says until ctx is done (a deadline: an error
// matching context.DeadlineExceeded; a cancellation: ctx's error) or the
// set is closed (ipc.ErrClosed). A set with no members waits for a Join. A
// *MemberError reports one member (its producers gone for the peer timeout,
// its ring closed or damaged), after the messages delivered before it, which
// n counts; the next Read goes on with the others. max <= 0 returns 0 at
// once; a nil ctx or fn is io/fs.ErrInvalid. One Read at a time (a
// concurrent one fails with io/fs.ErrInvalid). A Read that delivers
// allocates nothing.
func (s *Set) Read(ctx context.Context, max int, fn func(m *Member, msg []byte)) (n int, err error) {
	switch {
	case fn == nil:
		return 0, errNilFn
	case ctx == nil:
		return 0, errNilContext
	}
	if err := s.begin(fn); err != nil {
		return 0, err
	}
	defer s.end()
	if max <= 0 {
		return 0, nil
	}
	n, err = s.pass(max)
	if err == nil && s.sawEmpty {
		err = s.checkPeers(time.Now())
	}
	if n > 0 || err != nil {
		return n, err
	}
	return s.wait(ctx, max)
}

// begin starts a Read: the queued joins and leaves are taken in.
func (s *Set) begin(fn func(*Member, []byte)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errClosed
	case s.reading:
		return errConcurrent
	}
	s.reading = true
	s.apply()
	s.fn = fn
	return nil
}

// end ends a Read: Leave and Close waiting for it go on.
func (s *Set) end() {
	s.mu.Lock()
	s.apply()
	s.reading = false
	s.fn = nil
	s.cond.Broadcast()
	s.mu.Unlock()
}

// pass gives each member one turn, from where the last stopped, until max
// messages are delivered. A turn cut short by max goes on at the next pass
// with what is left of its budget, so max does not skew the shares. A
// member that fails is dropped and reported.
func (s *Set) pass(max int) (int, error) {
	n := 0
	s.sawEmpty = false
	for i, k := 0, len(s.members); i < k && n < max; i++ {
		if s.next >= len(s.members) {
			s.next, s.used = 0, 0
		}
		m := s.members[s.next]
		quota := s.budget - s.used
		take := min(quota, max-n)
		got, err := m.turn(take)
		n += got
		if got == take && take < quota && err == nil {
			s.used += got // cut by max: its turn goes on at the next pass
			break
		}
		if got == quota && err == nil {
			m.exhausted.Add(1) // its budget is spent: the rest waits for its next turn
		}
		s.next, s.used = s.next+1, 0
		if got == 0 {
			s.sawEmpty = true
		}
		if err != nil {
			return n, s.drop(m, err)
		}
	}
	return n, nil
}

// drop takes a member whose read failed (its ring closed or damaged) out
// of the set, and returns the error that reports it.
func (s *Set) drop(m *Member, err error) error {
	s.mu.Lock()
	_ = s.remove(m) // the consumer is closed, or its ring's Close closes it
	s.mu.Unlock()
	s.dropped.Add(1)
	return &MemberError{Member: m, Err: err}
}

// checkPeers samples, every checkEvery at most, each member's producers,
// and returns the report of one that has been empty with no producer for
// the peer timeout, once per absence.
//
// A presence is a sample that finds a producer attached, or a change of
// the ring's producer position word since the last sample (a write, by a
// producer that may have come and gone between the two); it ends an
// absence, so the next one is reported again. The position is loaded
// after the liveness test: a change is a write made after that test saw
// the ring as it was, so the write of a producer that died before a report
// does not count as a presence after it. Every member is sampled, busy or
// not: a producer that writes and is killed while its ring is never empty
// at a sample is still seen (its writes moved the position). The lock test
// (a system call per producer slot) is made for empty members only; the
// position is one load. The absence clock runs only while the member is
// empty with no producer, as a single Consumer's wait measures its peer
// timeout from an empty ring.
func (s *Set) checkPeers(now time.Time) error {
	if now.Sub(s.lastCheck) < s.checkEvery {
		return nil
	}
	s.lastCheck = now
	for _, m := range s.members {
		if m.h.Enter() != nil {
			continue // closed: its next turn reports it
		}
		alive := m.empty && m.h.ProducersAlive()
		produced := m.h.Produced()
		m.h.Leave()
		wrote := produced != m.produced
		m.produced = produced
		if alive || wrote {
			m.reported = false // a presence: the next absence is a new one
		}
		switch {
		case alive || !m.empty:
			m.absentSince = time.Time{}
		case wrote || m.absentSince.IsZero():
			m.absentSince = now // gone again since the last sample, or newly empty
		case !m.reported && now.Sub(m.absentSince) >= s.peerTimeout:
			m.reported = true
			m.reports.Add(1)
			s.peerDead.Add(1)
			s.lastCheck = time.Time{} // the others at the next Read
			return m.errPeer
		}
	}
	return nil
}
