// Package waitset lets one goroutine consume many rings: a [Set] takes the
// consumer role of each member ring and delivers their messages round
// robin, each with its ring's identity (a [*Member]), sleeping on all of
// them at once when they are all empty.
//
//	s, err := waitset.New(nil)
//	...
//	for _, r := range rings {
//		if _, err := s.Join(r); err != nil { ... }
//	}
//	defer s.Close()
//	for {
//		_, err := s.Read(ctx, 64, func(m *waitset.Member, msg []byte) {
//			handle(m.Name(), msg) // msg is valid until this returns
//		})
//		var me *waitset.MemberError
//		if errors.As(err, &me) {
//			log.Print(err) // a member's producers are gone, or its ring closed or damaged
//			continue
//		}
//		if err != nil {
//			return err
//		}
//	}
//
// # Fairness
//
// A turn of the round robin visits every member once and delivers at most
// Config.Budget messages from it, so a flooded ring gets its budget per turn
// and no more: with every member busy, each one's share of the messages is
// equal to within one budget. The turn resumes where the last Read stopped.
//
// # Reading
//
// Each member is read through an [ipc.Consumer] of its own, made by Join:
// its lock (the role; [ipc.ErrBusy] if another consumer holds it), its
// resumption at the released position, its recovery of a dead MPSC
// producer's reservation, its wake-up of producers waiting for room. The
// read path is the Consumer's, called through internal/handle, so a set
// reads a ring exactly as a Consumer does; a message is released when the
// member's turn ends (one position store per turn), so a set killed while
// it delivers re-delivers, on restart, at most the rest of that one turn.
//
// # Waiting
//
// When every member is empty the set waits as its Config.Wait says (by
// default it spins over its members, yields, then parks). To park, it
// announces itself on each member's consumer waiting line (line 5 of the
// layout: its parked flag), issues the one membarrier of the waiting
// protocol, re-checks every member, and sleeps with one futex_waitv system
// call (Linux 5.16+) on every member's futex word plus one word of its own
// that Join, Leave, Close and a cancelled context ring. A producer of any
// member wakes it through that ring's ordinary, coalesced wake-up: the
// producer side, and a C producer, need no change, and the segment no new
// field (docs/waitset.md says why, and what the limits are: futex_waitv
// sleeps on at most 128 words, so in a set of more than 127 rings a helper
// goroutine sleeps on each further chunk of 127 and wakes the set's word; a
// kernel without futex_waitv polls every member every millisecond).
//
// # Counters
//
// [Set.Stats] returns the set's counters (sleeps, wake-ups, spurious
// wake-ups, timed-out sleeps, members reported or dropped) and each
// member's (messages, bytes, turns, spent budgets, wake-ups); package
// metrics exports them (NewWaitSetCollector).
//
// # Concurrency
//
// Read is called by one goroutine at a time (a second concurrent Read
// fails with [io/fs.ErrInvalid]); its callback runs on that goroutine and
// must not call Read or Leave (Leave waits for the reading goroutine). Join,
// Leave, Members and Close are safe from any goroutine at any time: a
// running Read takes a join or a leave at its next turn or wake-up, and
// Close wakes a waiting Read, which returns [ipc.ErrClosed].
//
// A member's Ring may be closed while the set uses it: the set drops the
// member and reports it (a [MemberError] matching ipc.ErrClosed). Leave the
// ring first to close it quietly.
package waitset
