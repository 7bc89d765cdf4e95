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
// call (Linux 5.16+) on its futex words plus one word of its own that Join,
// Leave, Close and a cancelled context ring.
//
// For a member ring created with ipc.Config.Doorbell (descriptor flag bit
// 4: every producer follows the doorbell rule) the word is a doorbell: a
// small file the set makes in the ring's directory (one per directory,
// Config.DoorbellMode, removed with its last member and at Close), whose
// id the set stores in the ring's line 15; a producer that wakes the
// consumer rings the doorbell instead of the ring's own word. All the
// flagged members of a directory share one word, so a set of many rings
// sleeps on a few words, not one per ring (the kernel's cost per word
// slept on is most of a set's wake-up latency beyond a single ring's).
// Every other member (no flag, or a memfd ring, which has no directory)
// is slept on through its own line-5 futex word, which every producer, Go
// or C, of any release already wakes. docs/waitset.md says why and gives
// the limits: futex_waitv sleeps on at most 128 words, so beyond that a
// helper goroutine sleeps on each further chunk of 127 and wakes the set's
// word; a kernel without futex_waitv polls every member every millisecond;
// a flagged member whose producer cannot ring the doorbell costs one
// wake-up late by the sleep slice, then is slept on through its own word.
// Only the set stores a member's line 15: at each sleep it restores its
// own value if another process wrote one (MemberStats.DoorbellRestores),
// and a sleep that runs out although a producer of a doorbell member took
// its wake-up moves that member to its own word (MemberStats.MissedWakeups):
// a forged id costs at most one slice per wake-up, counted, never silently
// again.
//
// # Counters
//
// [Set.Stats] returns the set's counters (sleeps, wake-ups, spurious
// wake-ups, timed-out sleeps, members reported or dropped) and each
// member's (messages, bytes, turns, spent budgets, wake-ups, its doorbell
// and its ring's doorbell counters); package
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
