package waitset

import (
	"sync"
	"time"

	"github.com/shmring/shmring/internal/futex"
)

// chunk sleeps, for the set, on the futex words of members beyond the
// first maxMembersAsleep: futex_waitv takes at most 128 words, so a sleep
// of a set of more than 127 members is one futex_waitv by the reading
// goroutine (the set's own word and the first 127 members) and one by each
// chunk's helper goroutine (the set's own word and its 127 or fewer
// members). A helper woken by anything but the set's own word adds 1 to
// that word and wakes it (poke): that ends the reader's sleep, and the
// other helpers'. The reader, once its own sleep ends, pokes too (unless
// the word moved already) and waits for every helper to return before it
// ends the members' wait registrations (endWaits): no helper sleeps on the
// word of a ring that Close may unmap.
//
// The waiting protocol is unchanged for a member of a chunk: its word's
// value is loaded before its parked flag is announced, by the reader, and
// that value is what its helper sleeps on; a producer's bump after the
// announce makes the helper's futex_waitv return at once (EAGAIN) or wakes
// it.
//
// The goroutine is started the first time a sleep needs it and lives until
// the set's Close; between sleeps it blocks on start. While it sleeps in
// futex_waitv it holds an OS thread, as any blocking system call does.
type chunk struct {
	s     *Set
	vec   futex.Vec // the set's own word (index 0), then the chunk's members'
	base  int       // s.parked's index of the chunk's first member
	cseq  uint32    // the set's own word's value for this sleep
	slice time.Duration
	err   error         // the last sleep's failure (not a timeout), for the reader
	start chan struct{} // the reader: sleep once (closed: exit)
	done  chan struct{} // the helper: the sleep ended
}

// run is a chunk's goroutine.
func (c *chunk) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for range c.start {
		idx, err := c.vec.Wait(c.slice)
		c.err = nil
		if err != nil && err != futex.ErrTimeout {
			c.err = err
		}
		if idx > 0 {
			// A member's word: the reader serves that member first.
			c.s.woken.CompareAndSwap(-1, int32(c.base+idx-1))
		}
		if c.s.ctrl.Load() == c.cseq {
			// Not ended by the set's own word: end the reader's sleep
			// (and the other helpers').
			c.s.poke()
		}
		c.done <- struct{}{}
	}
}

// chunkFor returns the vector that s.parked's member k sleeps on: the
// reader's own (s.vec) for the first maxMembersAsleep, else chunk
// k/maxMembersAsleep's, started (and its vector reset to the set's own word)
// at its first member. The reader's, inside park.
func (s *Set) chunkFor(k int, cseq uint32) *futex.Vec {
	j := k + len(s.slept) // the reader's vector starts with the doorbells
	if j < maxMembersAsleep {
		return &s.vec
	}
	i := j/maxMembersAsleep - 1
	if j%maxMembersAsleep == 0 {
		if i == len(s.chunks) {
			c := &chunk{s: s, start: make(chan struct{}), done: make(chan struct{})}
			s.chunks = append(s.chunks, c)
			s.helpers.Add(1)
			go c.run(&s.helpers)
		}
		c := s.chunks[i]
		c.vec.Reset()
		c.vec.Add(&s.ctrl, cseq)
		c.base, c.cseq = k, cseq
		s.inUse = i + 1
	}
	return &s.chunks[i].vec
}

// sleepChunks starts the helpers of the chunks in use for a sleep of at
// most slice.
func (s *Set) sleepChunks(slice time.Duration) {
	for _, c := range s.chunks[:s.inUse] {
		c.slice = slice
		c.start <- struct{}{}
	}
}

// wakeChunks ends the helpers' sleeps, once the reader's ended, and waits
// for them; it returns the first failure of one.
func (s *Set) wakeChunks(cseq uint32) error {
	if s.inUse == 0 {
		return nil
	}
	if s.ctrl.Load() == cseq {
		s.poke()
	}
	var err error
	for _, c := range s.chunks[:s.inUse] {
		<-c.done
		if err == nil {
			err = c.err
		}
	}
	s.inUse = 0
	return err
}

// stopChunks ends the helper goroutines; by Close, with no Read running.
func (s *Set) stopChunks() {
	for _, c := range s.chunks {
		close(c.start)
	}
	s.chunks = nil
	s.helpers.Wait()
}
