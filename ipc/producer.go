package ipc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/pad"
	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// ProducerOption configures a Producer.
type ProducerOption func(*Producer)

// WithPolicy sets what the producer does when a message does not fit:
// Spin (default), Drop or Backoff.
func WithPolicy(p Policy) ProducerOption { return func(pr *Producer) { pr.policy = p } }

// WithTimeout sets how long a Block producer waits for room (default 1 s).
func WithTimeout(d time.Duration) ProducerOption { return func(pr *Producer) { pr.timeout = d } }

// WithOverflow selects the Overflow policy: a message that does not fit is
// handed to route (which may write it to another ring, a file, anywhere),
// on the calling goroutine, and route's error is Write's. The message is
// counted in Stats.Overflowed. route must not keep msg after it returns.
func WithOverflow(route func(msg []byte) error) ProducerOption {
	return func(pr *Producer) { pr.policy, pr.overflow = Overflow, route }
}

// WithThrottle makes the producer pause for d after each write while the
// ring's pressure is raised (the depth reached the high level and has not
// fallen to the low one): the soft level of layered backpressure, below the
// hard level where the policy applies.
func WithThrottle(d time.Duration) ProducerOption { return func(pr *Producer) { pr.throttle = d } }

// WithWaitHook installs a hook that a waiting producer consults every few
// milliseconds at most (and at every park): it sees the attempt, the time
// waited and the ring's depth, and may keep waiting, give up (the message
// is dropped, ErrFull) or fail (ErrWaitAborted, not counted as a drop).
// It runs on the writing goroutine and must not block.
func WithWaitHook(hook func(WaitInfo) WaitDecision) ProducerOption {
	return func(pr *Producer) { pr.side.hook = hook }
}

// WithHybrid sets the phases of the Hybrid policy: spins busy-wait
// iterations, then yields sched_yield calls, then park (defaults 2000 and 50).
func WithHybrid(spins, yields int) ProducerOption {
	return func(pr *Producer) { pr.side.hybridSpins, pr.side.hybridYield = spins, yields }
}

// WithPeerTimeout sets how long the producer waits for room while no
// consumer is attached before it returns ErrPeerDead (default 1 s).
func WithPeerTimeout(d time.Duration) ProducerOption {
	return func(pr *Producer) { pr.side.peerTimeout = d }
}

// WithProducerID asks for MPSC producer slot id (0 to Slots()-1), so that a
// restarted producer takes back its own slot and its counters. Without it
// the producer takes the first free slot.
func WithProducerID(id int) ProducerOption { return func(pr *Producer) { pr.slot = id } }

// Producer writes messages into a ring. An SPSC ring has at most one
// Producer at a time across all processes (a second gets ErrBusy); an MPSC
// ring has one per slot, up to Slots() at once, in any number of processes.
//
// Concurrency: a Producer is not safe for concurrent use. Its writing
// methods (Write, WriteContext, WriteSeq, TryWrite, WriteBatch, Claim,
// Commit, CommitN, Abort, NextSeq) and Close are called by one goroutine
// at a time; hand it from one goroutine to another only with
// synchronisation (a channel, a mutex). Two goroutines writing through one
// Producer at once corrupt the ring for every process (records written
// over each other, positions published out of order): to write from
// several goroutines, give each its own Producer on an MPSC ring, or
// serialise the calls. -race builds detect the overlap and panic, naming
// both calls, before the second touches the ring. Stats, Pressure, Slot and
// Policy are safe for concurrent use, from any goroutine at any time.
//
// After Close, or after its Ring's Close, every method that reads the
// ring returns ErrClosed (Slot, Policy and NextSeq keep answering from
// memory). A write waiting for room when the Ring is closed returns
// ErrClosed; see Ring for the rest of Ring.Close's contract.
type Producer struct {
	r      *Ring
	rp     *ring.Producer
	lock   *shm.Lock
	policy Policy
	slot   int         // MPSC: requested, then held slot; -1 for any
	closed atomic.Bool // by Close, or by Ring.Close (shut): calls return ErrClosed
	use    useGuard    // -race builds: detects concurrent calls

	closeMu  sync.Mutex // serialises Close with Ring.Close's closeFromRing
	released bool       // under closeMu: the role and the heartbeat are released

	timeout  time.Duration          // Block's deadline
	overflow func(msg []byte) error // the Overflow policy's route
	throttle time.Duration          // pause after a write under pressure
	side     waitSide               // waiting for room
	cw       ring.WaitPoint         // the consumer's wait words, to wake it
	stop     chan struct{}          // MPSC: ends the heartbeat goroutine
	done     chan struct{}
}

// Producer takes the producer role of the ring. The role is held by an
// open-file-description lock on the segment, which the kernel drops if this
// process dies, so a restarted producer can take it again.
func (r *Ring) Producer(opts ...ProducerOption) (*Producer, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	return r.newProducer(opts...)
}

func (r *Ring) newProducer(opts ...ProducerOption) (p *Producer, err error) {
	p = pad.New[Producer]()
	*p = Producer{r: r, policy: Hybrid, slot: -1, timeout: time.Second,
		side: waitSide{hybridSpins: defaultHybridSpins, hybridYield: defaultHybridYield, peerTimeout: DefaultPeerTimeout}}
	for _, o := range opts {
		o(p)
	}
	if _, ok := policyNames[p.policy]; !ok {
		return nil, fmt.Errorf("ipc: unknown producer policy %v", p.policy)
	}
	if p.policy == Overflow && p.overflow == nil {
		return nil, fmt.Errorf("ipc: the overflow policy needs a route: use WithOverflow")
	}
	if p.policy == DropOldest && !r.r.Overwrite() {
		return nil, fmt.Errorf("ipc: %q was not created for drop-oldest (WithDropOldest, ringctl create --drop-oldest)", r.Path())
	}
	if p.timeout <= 0 || p.side.peerTimeout <= 0 || p.side.hybridSpins < 0 || p.side.hybridYield < 0 {
		return nil, fmt.Errorf("ipc: producer timeouts must be positive and hybrid phases not negative")
	}
	registerBarrier()
	p.side.wp = r.r.ProducerWait()
	p.side.mode, _ = r.r.Modes()
	p.side.peerAlive = r.consumerAlive
	p.side.depth = r.depth
	p.side.closed = &p.closed
	p.cw = r.r.ConsumerWait()
	if r.Kind() == MPSC {
		err = p.takeSlot()
	} else {
		if p.slot > 0 {
			return nil, fmt.Errorf("ipc: %q is an spsc ring: it has no producer slots (asked for %d)", r.Path(), p.slot)
		}
		p.slot = 0
		if p.lock, err = r.lockRole(ring.ProducerLine, "producer"); err == nil {
			if p.rp, err = r.r.NewProducer(); err != nil {
				err = fmt.Errorf("ipc: %q: %w", r.Path(), err)
			}
		}
	}
	if err == nil {
		err = r.register(p)
	}
	if err != nil {
		_ = p.lock.Unlock()
		return nil, err
	}
	if p.stop != nil {
		go p.heartbeat()
	}
	return p, nil
}

// takeSlot takes an MPSC producer slot: the one asked for, or the first
// free one. Holding the slot's lock is holding the slot; the kernel drops it
// when this process dies, which is how the consumer tells a dead producer
// from a slow one.
func (p *Producer) takeSlot() error {
	r := p.r
	n := r.r.Slots()
	if p.slot >= n {
		return fmt.Errorf("ipc: %q has producer slots 0 to %d; %d is out of range", r.Path(), n-1, p.slot)
	}
	try := func(i int) error {
		l, err := r.seg.Lock(int64(r.r.SlotOffset(i)), ring.LineSize)
		if err != nil {
			return err
		}
		p.lock, p.slot = l, i
		return nil
	}
	if p.slot >= 0 {
		if err := try(p.slot); err != nil {
			if errors.Is(err, shm.ErrBusy) {
				return fmt.Errorf("ipc: %q producer slot %d is held by a live process: %w", r.Path(), p.slot, ErrBusy)
			}
			return err
		}
	} else {
		var err error
		for i := 0; i < n; i++ {
			if err = try(i); err == nil || !errors.Is(err, shm.ErrBusy) {
				break
			}
		}
		if err != nil {
			if errors.Is(err, shm.ErrBusy) {
				return fmt.Errorf("ipc: %q has all %d producer slots held by live processes; close a producer or create the ring with more (ringctl create --producers): %w", r.Path(), n, ErrBusy)
			}
			return err
		}
	}
	start, err := proc.SelfStartTime()
	if err != nil {
		return fmt.Errorf("ipc: read this process's start time from /proc/self/stat (is /proc mounted?): %w", err)
	}
	// The PID namespace tells observers whether the PID means anything to
	// them (Ring.slotAlive); 0 if unreadable, which they treat as unknown.
	r.r.SetSlotOwner(p.slot, uint32(os.Getpid()), start, proc.PIDNamespace(), time.Now().UnixNano())
	if p.rp, err = r.r.NewSlotProducer(p.slot); err != nil {
		return fmt.Errorf("ipc: %q: %w", r.Path(), err)
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	return nil
}

// heartbeatEvery is how often an MPSC producer refreshes its slot's
// heartbeat (for display: liveness comes from the slot's lock).
const heartbeatEvery = time.Second

func (p *Producer) heartbeat() {
	defer close(p.done)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.r.r.Heartbeat(p.slot, now.UnixNano())
		}
	}
}

// Slot returns the producer's MPSC slot (0 for an SPSC ring). Safe for
// concurrent use; it answers after Close too.
func (p *Producer) Slot() int { return p.slot }

// Stats returns the counters of this producer's slot (MPSC) or of the
// ring's producer (SPSC): what this producer ID has written across
// restarts. Safe for concurrent use with the producer's writes, from any
// goroutine; ErrClosed after Close or Ring.Close.
func (p *Producer) Stats() (ring.SlotStats, error) {
	if err := p.r.enter(); err != nil {
		return ring.SlotStats{Slot: p.slot}, err
	}
	defer p.r.leave()
	if p.closed.Load() {
		return ring.SlotStats{Slot: p.slot}, p.errClosed()
	}
	if p.r.Kind() == MPSC {
		return p.r.r.Slot(p.slot), nil
	}
	st := p.r.r.Stats()
	return ring.SlotStats{MsgsIn: st.MsgsIn, BytesIn: st.BytesIn, FullEvents: st.FullEvents, Drops: st.Drops, Spins: st.Spins}, nil
}

// Policy returns the producer's policy. Safe for concurrent use.
func (p *Producer) Policy() Policy { return p.policy }

// errClosed is what a call on a closed producer returns.
func (p *Producer) errClosed() error {
	return fmt.Errorf("ipc: %q: the producer is closed (Producer.Close or Ring.Close); take the role again with Ring.Producer: %w", p.r.Path(), ErrClosed)
}

// Write writes msg as one message, applying the producer's policy when the
// ring is full: Spin, Yield, Backoff, Park and Hybrid wait for room (or
// return ErrPeerDead once no consumer has been attached for the peer
// timeout), Block waits up to its timeout (ErrTimeout), Drop returns ErrFull
// at once. Once a wait has returned ErrPeerDead, a later write that finds
// the ring full and still no consumer returns ErrPeerDead at once rather
// than waiting out the peer timeout again; a consumer's return ends that.
// A message that is not written counts as dropped. It returns
// ErrTooLarge for a message above MaxMessage, ErrClosed after Close or
// when the Ring is closed while it waits.
func (p *Producer) Write(msg []byte) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opWrite)
		defer p.use.exit()
	}
	return p.write(context.Background(), msg)
}

// WriteContext is Write that also stops waiting when ctx is done, returning
// ErrTimeout for a passed deadline or the context's error. A nil ctx
// returns ErrInvalid.
func (p *Producer) WriteContext(ctx context.Context, msg []byte) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if ctx == nil {
		return errNilContext
	}
	if raceChecks {
		p.use.enter("Producer", opWriteContext)
		defer p.use.exit()
	}
	return p.write(ctx, msg)
}

func (p *Producer) write(ctx context.Context, msg []byte) error {
	err := p.rp.TryWrite(msg)
	if err == nil {
		p.published()
		return nil
	}
	if err != ring.ErrFull {
		return err
	}
	return p.waitFor(ctx, 1, func() (bool, error) { return notFull(p.rp.TryWrite(msg)) },
		func() error { return p.overflow(msg) },
		func() error { _, err := p.rp.TryWriteOverwrite(msg); return err })
}

// WriteSeq is WriteContext with the message's sequence number given, in a
// ring created WithSequences: send a message you may already have sent
// (before a crash) with its original sequence, and the consumer discards it
// if it was delivered. A producer's sequences must increase, except that
// the messages InDoubt names are resent first, from its start.
func (p *Producer) WriteSeq(ctx context.Context, seq uint64, msg []byte) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if ctx == nil {
		return errNilContext
	}
	if raceChecks {
		p.use.enter("Producer", opWriteSeq)
		defer p.use.exit()
	}
	if !p.r.r.Sequences() {
		return fmt.Errorf("ipc: %q was created without sequences (WithSequences)", p.r.Path())
	}
	err := p.rp.TryWriteSeq(seq, msg)
	if err == nil {
		p.published()
		return nil
	}
	if err != ring.ErrFull {
		return err
	}
	return p.waitFor(ctx, 1, func() (bool, error) { return notFull(p.rp.TryWriteSeq(seq, msg)) },
		func() error { return p.overflow(msg) })
}

// NextSeq returns the sequence number the next message gets, in a ring
// created WithSequences: one past the highest this producer ID (or the SPSC
// ring's producer) may have committed, across restarts and kills. It is
// called by the writing goroutine (it reads what the writes update); it
// answers from memory after Close too.
func (p *Producer) NextSeq() uint64 {
	if raceChecks {
		p.use.enter("Producer", opNextSeq)
		defer p.use.exit()
	}
	return p.rp.NextSeq()
}

// InDoubt returns, in a ring created WithSequences, the sequences [from,
// to) that the previous producer under this ID (or the SPSC ring's previous
// producer) may have died committing: every message it wrote with a
// sequence below from was committed, none with one at or above to (NextSeq
// when this producer opened). After a crash, resend the messages you had
// given sequences from on, in order, with WriteSeq and their original
// sequences, before any new message: none is lost and none delivered twice.
// MPSC: the previous producer's last message (from = to-1); SPSC: its last
// write if that was cut short (a batch), else nothing (from = to).
func (p *Producer) InDoubt() (from, to uint64) {
	if raceChecks {
		p.use.enter("Producer", opInDoubt)
		defer p.use.exit()
	}
	return p.rp.InDoubt()
}

// notFull turns the result of a non-blocking attempt into a wait's
// (done, error): ErrFull means "not yet", anything else ends the wait.
func notFull(err error) (bool, error) {
	if err == ring.ErrFull {
		return false, nil
	}
	return true, err
}

// published is called after every successful write: one load of the
// consumer's parked flag, and a wake only if it sleeps; then the soft level.
func (p *Producer) published() {
	if p.cw.Parked.Load() != 0 {
		wake(p.cw)
	}
	if p.throttle > 0 && p.rp.Pressure() != 0 {
		time.Sleep(p.throttle)
	}
}

// Pressure returns the ring's pressure word: 0 none; bit ring.PressureDepth
// while the depth is past the high level of SetPressureLevels (until it
// falls to the low level); bit ring.PressureDelay while queueing delay is
// above the target of WithTargetDelay. Producers may slow down while it is
// raised (see WithThrottle); the hard level, a full ring, is where the
// policy applies. Safe for concurrent use with the producer's writes, from
// any goroutine; ErrClosed after Close or Ring.Close.
func (p *Producer) Pressure() (uint32, error) {
	if err := p.r.enter(); err != nil {
		return 0, err
	}
	defer p.r.leave()
	if p.closed.Load() {
		return 0, p.errClosed()
	}
	return p.rp.Pressure(), nil
}

// waitFor applies the policy after a first attempt found the ring full;
// pending is how many messages are dropped if it gives up, route hands them
// to the overflow route (nil where there is no message yet: a claim).
//
// It registers the call as waiting (Ring.beginWait) for its whole run,
// counters included: Ring.Close wakes it and waits for it, and it returns
// ErrClosed, touching the segment no more, once the producer is shut.
func (p *Producer) waitFor(ctx context.Context, pending int, try func() (bool, error), route func() error, overwrite ...func() error) error {
	if !p.r.beginWait(&p.closed) {
		return p.errClosed()
	}
	defer p.r.endWait()
	p.use.waiting()
	p.rp.AddFullEvent()
	var overwriteFn func() error
	if len(overwrite) > 0 {
		overwriteFn = overwrite[0]
	}
	policy := p.side.effective(p.policy)
	var spins, yields uint64
	var err error
	switch policy {
	case DropOldest:
		if overwriteFn != nil && p.r.r.Overwrite() {
			if err = overwriteFn(); err == nil {
				p.published()
			}
			return err
		}
		p.rp.AddDrops(uint64(pending))
		return ErrFull
	case Drop, Overflow:
		err = ErrFull
	default:
		var deadline time.Time
		if policy == Block {
			deadline = time.Now().Add(p.timeout)
		}
		spins, yields, err = p.side.wait(ctx, policy, deadline, try)
		if err == errShut {
			return p.errClosed() // the ring is closing: count nothing
		}
		p.rp.AddSpins(spins, yields)
	}
	switch {
	case err == nil:
		p.published()
		return nil
	case err == ErrFull && route != nil && p.overflow != nil && p.side.effective(p.policy) == Overflow:
		p.rp.AddOverflowed(uint64(pending))
		return route()
	case errors.Is(err, ring.ErrCorrupt), errors.Is(err, ErrTooLarge), errors.Is(err, ErrWaitAborted):
		return err
	}
	p.rp.AddDrops(uint64(pending))
	return err
}

// TryWrite writes msg if it fits and returns ErrFull otherwise, whatever the
// policy. A refused message is counted as a full event, not as a drop: the
// caller still has it.
func (p *Producer) TryWrite(msg []byte) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opTryWrite)
		defer p.use.exit()
	}
	err := p.rp.TryWrite(msg)
	switch err {
	case nil:
		p.published()
	case ring.ErrFull:
		p.rp.AddFullEvent()
	}
	return err
}

// WriteBatch writes msgs in order, publishing each run that fits with one
// position store (SPSC), or reserving it with one compare-and-swap (MPSC:
// 1.5x the messages per second of single writes with 4 producers,
// docs/benchmarks.md). When the ring fills, the policy applies to the
// rest: waiting policies wait and go on; Drop writes what fits, counts the
// rest as drops, and returns ErrFull with the number written.
func (p *Producer) WriteBatch(msgs [][]byte) (int, error) {
	if p.closed.Load() {
		return 0, p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opWriteBatch)
		defer p.use.exit()
	}
	var done int
	for done < len(msgs) {
		n, err := p.rp.WriteBatch(msgs[done:])
		done += n
		if n > 0 {
			p.published()
		}
		if err == nil {
			continue
		}
		if err != ring.ErrFull {
			return done, err
		}
		return p.writeBatchWaiting(msgs, done)
	}
	return done, nil
}

// writeBatchWaiting is the rest of a WriteBatch that found the ring full:
// registered as waiting until it returns, so that Ring.Close, which wakes
// its waits, never unmaps the segment under the writes between them.
func (p *Producer) writeBatchWaiting(msgs [][]byte, done int) (int, error) {
	if !p.r.beginWait(&p.closed) {
		return done, p.errClosed()
	}
	defer p.r.endWait()
	for first := true; done < len(msgs); first = false {
		if !first {
			n, err := p.rp.WriteBatch(msgs[done:])
			done += n
			if n > 0 {
				p.published()
			}
			if err == nil {
				continue
			}
			if err != ring.ErrFull {
				return done, err
			}
		}
		var k int
		err := p.waitFor(context.Background(), len(msgs)-done, func() (bool, error) {
			var e error
			k, e = p.rp.WriteBatch(msgs[done:])
			return notFull(e)
		}, func() error {
			for _, m := range msgs[done:] {
				if err := p.overflow(m); err != nil {
					return err
				}
			}
			k = len(msgs) - done
			return nil
		}, func() error {
			for _, m := range msgs[done:] {
				if _, err := p.rp.TryWriteOverwrite(m); err != nil {
					return err
				}
				k++
			}
			return nil
		})
		done += k
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Claim reserves room for an n-byte message and returns the slice to fill,
// inside the ring (zero-copy); Commit publishes it, Abort gives the room
// back. When the ring is full the policy applies as for Write. The slice
// must not be used after Commit or Abort, nor after Close or Ring.Close
// (which abandon the claim and unmap the ring).
func (p *Producer) Claim(n int) ([]byte, error) {
	if p.closed.Load() {
		return nil, p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opClaim)
		defer p.use.exit()
	}
	b, err := p.rp.Claim(n)
	if err != ring.ErrFull {
		return b, err
	}
	err = p.waitFor(context.Background(), 1, func() (bool, error) {
		var e error
		b, e = p.rp.Claim(n)
		return notFull(e)
	}, nil)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Commit publishes the claimed message. It returns ErrClosed after Close
// or Ring.Close (the claim was abandoned).
func (p *Producer) Commit() error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opCommit)
		defer p.use.exit()
	}
	err := p.rp.Commit()
	if err == nil {
		p.published()
	}
	return err
}

// CommitN publishes the first n bytes of the claimed message. It returns
// ErrClosed after Close or Ring.Close (the claim was abandoned).
func (p *Producer) CommitN(n int) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opCommitN)
		defer p.use.exit()
	}
	err := p.rp.CommitN(n)
	if err == nil {
		p.published()
	}
	return err
}

// Abort abandons the claimed message, if any. It returns ErrClosed after
// Close or Ring.Close, which abandoned the claim already.
func (p *Producer) Abort() error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opAbort)
		defer p.use.exit()
	}
	p.rp.Abort()
	p.published() // an MPSC abort may unblock the consumer
	return nil
}

// Close releases the producer role. A claim still outstanding is abandoned.
// It is called by the goroutine that writes, or with the writes stopped
// (see Producer); Close is idempotent, and may overlap its Ring's Close.
func (p *Producer) Close() error {
	if raceChecks {
		p.use.enter("Producer", opClose)
		defer p.use.exit()
	}
	p.closed.Store(true)
	return p.release()
}

// shut marks the producer closed for Ring.Close: its calls return
// ErrClosed from now on, and a waiting one at its next check.
func (p *Producer) shut() { p.closed.Store(true) }

// closeFromRing releases the producer for Ring.Close, once no call of it
// waits any more.
func (p *Producer) closeFromRing() error {
	p.use.awaitIdle("Producer")
	return p.release()
}

func (p *Producer) guard() (string, *useGuard) { return "Producer", &p.use }

// release gives the role back, once.
func (p *Producer) release() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.released {
		return nil
	}
	p.released = true
	p.rp.Abort()
	if p.stop != nil {
		close(p.stop)
		<-p.done
	}
	p.r.unregister(p)
	return errors.Join(p.lock.Unlock())
}
