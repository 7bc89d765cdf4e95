// Package ipc is shmring's transport: a ring buffer of variable-length
// messages in a shared-memory segment, written by producers in one or more
// processes and read by one consumer in another (or the same) process.
// Operator tools (doctor, peek, list, policy overrides) are in package
// github.com/shmring/shmring/ops, the Prometheus exporter in
// github.com/shmring/shmring/metrics: ipc itself links neither net/http nor
// protobuf.
//
// # Rings
//
// A ring is a file, by default in /dev/shm, made by [Create] and opened by
// [Open]. What only creation decides is a [Config]: the [Kind] ([SPSC],
// one producer at a time, or [MPSC], up to Config.Producers at once), the
// capacity and largest message, and options such as sequences, timestamps,
// drop-oldest or pressure levels. Open takes no Config: the ring has the
// one it was made with, which [Ring.Stats] reports. [Option] values say
// where a name lives and how the segment is trusted ([WithDir],
// [WithReadOnly], [WithTrustOwner]); [Remove] unlinks a ring.
//
//	r, err := ipc.Create("orders", ipc.Config{Capacity: 1 << 20})
//	// in another process:
//	r, err := ipc.Open("orders")
//
// With Config.Memfd the ring is an anonymous sealed memfd instead, handed to
// another process over a Unix socket ([Ring.Share], [Receive]). The layout
// in the segment (docs/layout.md) is a public contract.
//
// # Producing
//
// [Ring.Producer] takes the producer role (nil: every default), or an MPSC
// slot. [Producer.Write] copies a message in; [Producer.WriteBatch] writes
// many with one position store or one reservation; [Producer.Claim] and
// [Producer.Commit] fill a message in place (zero-copy); [Producer.TryWrite]
// never waits. Each role is an open-file-description lock on the segment,
// which the kernel releases if the process dies, so a restarted process
// takes its role back and resumes at the last published position; an MPSC
// producer that asks for its slot again (ProducerConfig.ID) gets its
// counters and sequences back.
//
//	p, err := r.Producer(nil)
//	err = p.Write(ctx, []byte("buy 10"))
//
// # Consuming
//
// [Ring.Consumer] takes the consumer role. [Consumer.Read] waits for data
// and hands up to max messages to a callback, then releases them with one
// position store; [Consumer.TryRead] does not wait. [Consumer.Batch]
// returns an iterator that waits the same way and hands the messages to a
// range loop instead of a callback, releasing what the loop saw with one
// position store when the loop ends:
//
//	n, err := c.Read(ctx, 64, func(msg []byte) { handle(msg) })
//
//	for rec, err := range c.Batch(ctx, 64) {
//		if err != nil {
//			return err
//		}
//		handle(rec.Data)
//	}
//
// A consumer created with ConsumerConfig.Hold releases nothing as it
// reads: [Consumer.Release] hands back, later, everything up to a Record's
// Pos, and a successor resumes at what was released (a bridge that
// releases what a remote store acknowledged loses nothing in a crash).
//
// Messages are zero-copy: a callback's slice points into shared memory and
// is valid only until the callback returns; a Record's Data, until the loop
// ends (until the body returns in a drop-oldest ring). Copy what must
// outlive it.
//
// # When the ring is full, and how anyone waits
//
// Two separate choices. What a producer does with a message that does not
// fit is its [ProducerConfig]: wait for room (the zero [Full]), [Drop] it at
// once ([ErrFull], counted), make room by dropping the oldest ([DropOldest],
// rings created with Config.DropOldest), or hand it to an Overflow route.
// How a side waits, a producer for room or a consumer for data, is a
// [Wait], one value both can share: its [Strategy] ([Hybrid], the default,
// spins, yields, then sleeps on a futex in the segment; [Spin], [Yield]
// and [Park] do one of those), its peer timeout (a wait returns
// [ErrPeerDead] once the other side has been gone that long) and an
// optional hook that may end the wait. Memory never grows: the capacity is
// fixed at creation. A soft level sits below the hard one: the ring's
// [Pressure] rises at Config.HighWater (or when queueing delay passes
// Config.TargetDelay), and ProducerConfig.Throttle slows a producer while
// it is raised. An operator may override any side's policy in the segment
// (ringctl policy).
//
// # Contexts
//
// Every call that can wait takes a context: Write, WriteBatch, WriteSeq,
// Claim, Read and Batch. A wait ends when the context is done: its
// deadline gives an error matching [context.DeadlineExceeded], a
// cancellation the context's error. A call that does not have to wait does
// not look at its context, so passing one costs nothing on the fast path.
//
// # Two processes
//
// One process creates the ring (only [Create] takes a Config); the other
// opens it by name. When they may start in either order, the opener
// retries while Open fails with an error matching [io/fs.ErrNotExist]
// (the name appears only once the ring is fully made), with a limit of
// its own:
//
//	r, err := ipc.Open("orders")
//	for i := 0; errors.Is(err, fs.ErrNotExist) && i < 100; i++ {
//		time.Sleep(50 * time.Millisecond) // not created yet
//		r, err = ipc.Open("orders")
//	}
//
// The creator removes the name ([Remove]) when the ring is no longer
// wanted; processes that have it open keep using it, and its memory is
// freed when the last one closes it. A name left behind by a creator that
// died makes the next Create fail with io/fs.ErrExist: remove it first
// (ringctl rm NAME), or Open it instead.
//
// The default wait is not a wait forever. Wait.PeerTimeout (1 s by
// default) is how long the other side may be absent while one waits: a
// producer started more than that before its consumer gets [ErrPeerDead]
// (the message counted as a drop) once the ring fills, and a consumer
// started more than that before its producer gets ErrPeerDead from Read.
// Raise PeerTimeout for processes that start far apart, or retry on
// ErrPeerDead.
//
// A consumer learns that its producer finished in one of two ways. The
// producer closes (or exits), and the consumer, once it has delivered
// every message still in the ring, gets ErrPeerDead when no producer has
// been attached for PeerTimeout (in an MPSC ring: no producer at all). Or,
// to know at once and without a timeout, the producer writes a last
// message that the application defines as the end, and the consumer
// stops when it reads it.
//
// # Errors
//
// ipc's sentinels are [ErrFull], [ErrTooLarge], [ErrClosed], [ErrCorrupt],
// [ErrIncompatible], [ErrBusy] and [ErrPeerDead]; test them with
// errors.Is. Conditions the standard library names are its values: Create
// on a taken name returns an error matching [io/fs.ErrExist], Open and
// Remove of no such ring [io/fs.ErrNotExist], a segment this user may not
// open (or one owned by another user, without WithTrustOwner)
// [io/fs.ErrPermission] (so does a Producer or Consumer of a ring opened
// WithReadOnly), and a Config, argument or configuration no call
// can accept (a nil context or callback, a negative duration)
// [io/fs.ErrInvalid]. Everything read from the segment is validated;
// damage is reported as ErrCorrupt, never a panic. Errors say what is
// wrong and what to do.
//
// # Concurrency
//
// A [Ring]'s methods are safe for concurrent use; a [Producer] or
// [Consumer] is used by one goroutine at a time (to write from several
// goroutines, give each its own Producer of an MPSC ring), except for the
// few methods their docs name. -race builds panic when one is used by two
// goroutines at once, before the ring is touched. Close the Producer and
// Consumer before their Ring, from the goroutines that use them; after any
// Close, calls return ErrClosed. Ring.Close wakes a call that is waiting
// for room or data (it returns ErrClosed) but must not run while a call
// is in the middle of a write or read: see [Ring].
package ipc
