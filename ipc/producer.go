package ipc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/internal/pad"
	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// Producer writes messages into a ring. An SPSC ring has at most one
// Producer at a time across all processes (a second gets ErrBusy); an MPSC
// ring has one per slot, up to Config.Producers at once, in any number of
// processes.
//
// Concurrency: a Producer is not safe for concurrent use. Its writing
// methods (Write, TryWrite, WriteBatch, WriteSeq, Claim, Commit, Abort,
// InDoubt) and Close are called by one goroutine
// at a time; hand it from one goroutine to another only with
// synchronisation (a channel, a mutex). Two goroutines writing through one
// Producer at once corrupt the ring for every process (records written
// over each other, positions published out of order): to write from
// several goroutines, give each its own Producer on an MPSC ring, or
// serialise the calls. -race builds detect the overlap and panic, naming
// both calls, before the second touches the ring. Stats and Pressure are
// safe for concurrent use, from any goroutine at any time.
//
// After Close, or after its Ring's Close, every method that reads the
// ring returns ErrClosed (InDoubt keeps answering from memory). A write
// waiting for room when the Ring is closed returns ErrClosed; see Ring for
// the rest of Ring.Close's contract.
type Producer struct {
	r      *Ring
	rp     *ring.Producer
	lock   *shm.Lock
	policy policy      // derived from the ProducerConfig (see newProducer)
	slot   int         // MPSC: requested, then held slot; -1 for any
	closed atomic.Bool // by Close, or by Ring.Close (shut): calls return ErrClosed
	use    useGuard    // -race builds: detects concurrent calls

	closeMu  sync.Mutex // serialises Close with Ring.Close's closeFromRing
	released bool       // under closeMu: the role and the heartbeat are released

	overflow func(msg []byte) error // the Overflow policy's route
	throttle time.Duration          // pause after a write under pressure
	side     waitSide               // waiting for room
	cw       ring.WaitPoint         // the consumer's wait words, to wake it
	stop     chan struct{}          // MPSC: ends the heartbeat goroutine
	done     chan struct{}
}

// Producer takes the producer role of the ring, configured by cfg (nil:
// every default). The role is held by an open-file-description lock on the
// segment, which the kernel drops if this process dies, so a restarted
// producer can take it again. It fails with [ErrBusy] if an SPSC ring has
// a producer already (or the MPSC slot asked for, or every slot, is held),
// with [io/fs.ErrInvalid] for a cfg no producer can follow (an unknown Full
// or Strategy, a negative count or duration, an ID out of range), and with
// an error saying so for Full DropOldest on a ring created without
// Config.DropOldest.
func (r *Ring) Producer(cfg *ProducerConfig) (*Producer, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	return r.newProducer(cfg)
}

// producerPolicy derives a producer's wait-loop policy from its
// configuration, once: Overflow set, overflow; Full Drop, drop; Full
// DropOldest, drop-oldest; else the Wait's Strategy.
func producerPolicy(cfg *ProducerConfig, wait policy) (policy, error) {
	switch {
	case cfg.Overflow != nil:
		return pOverflow, nil
	case cfg.Full == Drop:
		return pDrop, nil
	case cfg.Full == DropOldest:
		return pDropOldest, nil
	case cfg.Full == 0:
		return wait, nil
	}
	return 0, fmt.Errorf("ipc: producer Full %d: want 0 (wait), Drop or DropOldest: %w", uint8(cfg.Full), errs.ErrInvalid)
}

func (r *Ring) newProducer(cfg *ProducerConfig) (p *Producer, err error) {
	if cfg == nil {
		cfg = &ProducerConfig{}
	}
	side, wait, err := cfg.Wait.waitSide(false)
	if err != nil {
		return nil, err
	}
	pol, err := producerPolicy(cfg, wait)
	if err != nil {
		return nil, err
	}
	if cfg.Throttle < 0 || cfg.ID < 0 {
		return nil, fmt.Errorf("ipc: producer throttle %v and ID %d must not be negative: %w", cfg.Throttle, cfg.ID, errs.ErrInvalid)
	}
	if pol == pDropOldest && !r.r.Overwrite() {
		return nil, fmt.Errorf("ipc: %q was not created for drop-oldest (Config.DropOldest, ringctl create --drop-oldest)", r.Path())
	}
	p = pad.New[Producer]()
	*p = Producer{r: r, policy: pol, slot: cfg.ID - 1, overflow: cfg.Overflow, throttle: cfg.Throttle, side: side}
	registerBarrier()
	p.side.wp = r.r.ProducerWait()
	p.side.mode, _ = r.r.Modes()
	p.side.peerAlive = r.consumerAlive
	p.side.depth = r.depth
	p.side.closed = &p.closed
	p.cw = r.r.ConsumerWait()
	if r.r.Kind() == ring.MPSC {
		err = p.takeSlot()
	} else {
		if p.slot > 0 {
			return nil, fmt.Errorf("ipc: %q is an spsc ring: it has one producer, ID 0 or 1 (asked for ID %d): %w", r.Path(), cfg.ID, errs.ErrInvalid)
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
		return fmt.Errorf("ipc: %q has producer IDs 1 to %d (0: any free slot); %d is out of range: %w", r.Path(), n, p.slot+1, errs.ErrInvalid)
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
				return fmt.Errorf("ipc: %q producer slot %d (ID %d) is held by a live process: %w", r.Path(), p.slot, p.slot+1, ErrBusy)
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

// Stats returns the counters of this producer's slot (MPSC) or of the
// ring's producer (SPSC, as slot 0: MsgsIn, BytesIn, FullEvents, Drops and
// Spins from the ring's counters): what this producer ID has written
// across restarts; Alive is true, and NextSeq is the sequence its next
// message gets (rings with sequences). Safe for concurrent use with the
// producer's writes, from any goroutine; ErrClosed after Close or
// Ring.Close.
func (p *Producer) Stats() (SlotStats, error) {
	if err := p.r.enter(); err != nil {
		return SlotStats{Slot: p.slot}, err
	}
	defer p.r.leave()
	if p.closed.Load() {
		return SlotStats{Slot: p.slot}, p.errClosed()
	}
	seqs := p.r.r.Sequences()
	if p.r.r.Kind() == ring.MPSC {
		return slotStats(p.r.r.Slot(p.slot), true, seqs), nil
	}
	st := p.r.r.Stats()
	s := SlotStats{MsgsIn: st.MsgsIn, BytesIn: st.BytesIn, FullEvents: st.FullEvents, Drops: st.Drops, Spins: st.Spins, Alive: true}
	if seqs {
		// The words the producer stores as it goes (NextSeq itself is the
		// writing goroutine's): one past the highest begun or committed.
		s.NextSeq = max(st.SeqBegun, st.LastSeq) + 1
	}
	return s, nil
}

// errClosed is what a call on a closed producer returns.
func (p *Producer) errClosed() error {
	return fmt.Errorf("ipc: %q: the producer is closed (Producer.Close or Ring.Close); take the role again with Ring.Producer: %w", p.r.Path(), ErrClosed)
}

// Write writes msg as one message. When it does not fit, the
// ProducerConfig decides: Overflow hands it to the route; Full Drop returns
// [ErrFull] at once; Full DropOldest reclaims the oldest messages; else the
// producer waits for room as its Wait says, until ctx is done (a deadline:
// an error matching [context.DeadlineExceeded]; a cancellation: ctx's
// error), the Wait's hook ends the wait, or no consumer has been attached
// for Wait.PeerTimeout ([ErrPeerDead]). Once a wait has returned
// ErrPeerDead, a later write that finds the ring full and still no consumer
// returns ErrPeerDead at once rather than waiting out the peer timeout
// again; a consumer's return ends that. A message that is not written
// counts as dropped, unless the hook ended the wait with an error of its
// own or the ring is damaged.
//
// ctx is looked at only when the message does not fit: a write that finds
// room costs no context call. A nil ctx returns [io/fs.ErrInvalid]. It
// returns [ErrTooLarge] for a message above Stats.MaxMessage, [ErrClosed]
// after Close or when the Ring is closed while it waits, [ErrCorrupt] when
// the ring is damaged.
func (p *Producer) Write(ctx context.Context, msg []byte) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if ctx == nil {
		return errNilContext
	}
	if raceChecks {
		p.use.enter("Producer", opWrite)
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

// WriteSeq is Write with the message's sequence number given, in a ring
// created with Config.Sequences: send a message you may already have sent
// (before a crash) with its original sequence, and the consumer discards it
// if it was delivered. A producer's sequences must increase, except that
// the messages InDoubt names are resent first, from its start. Under Full
// DropOldest a message that does not fit is dropped (ErrFull, counted)
// rather than reclaiming older ones.
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
		return fmt.Errorf("ipc: %q was created without sequences (Config.Sequences): %w", p.r.Path(), errs.ErrInvalid)
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

// InDoubt returns, in a ring created with Config.Sequences, the sequences
// [from, to) that the previous producer under this ID (or the SPSC ring's
// previous producer) may have died committing: every message it wrote with
// a sequence below from was committed, none with one at or above to (the
// sequence this producer's first new message gets: SlotStats.NextSeq when
// it opened). After a crash, resend the messages you had
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

// Pressure returns the ring's soft pressure level: Depth while the depth is
// past Config.HighWater (until it falls to LowWater), Delay while queueing
// delay is above Config.TargetDelay. Producers may slow down while it is
// raised (ProducerConfig.Throttle does); the hard level, a full ring, is
// where ProducerConfig.Full applies. Safe for concurrent use with the
// producer's writes, from any goroutine; ErrClosed after Close or
// Ring.Close.
func (p *Producer) Pressure() (Pressure, error) {
	if err := p.r.enter(); err != nil {
		return Pressure{}, err
	}
	defer p.r.leave()
	if p.closed.Load() {
		return Pressure{}, p.errClosed()
	}
	return pressureOf(p.rp.Pressure()), nil
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
	case pDropOldest:
		if overwriteFn != nil && p.r.r.Overwrite() {
			if err = overwriteFn(); err == nil {
				p.published()
			}
			return err
		}
		p.rp.AddDrops(uint64(pending))
		return ErrFull
	case pDrop, pOverflow:
		err = ErrFull
	default:
		// Every waiting policy (an override of block included) is bounded
		// by the caller's context alone.
		deadline, _ := ctx.Deadline()
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
	case err == ErrFull && route != nil && p.overflow != nil && p.side.effective(p.policy) == pOverflow:
		p.rp.AddOverflowed(uint64(pending))
		return route()
	case errors.Is(err, ring.ErrCorrupt), errors.Is(err, ErrTooLarge), isHookError(err):
		return err
	}
	p.rp.AddDrops(uint64(pending))
	return err
}

// TryWrite writes msg if it fits and returns [ErrFull] otherwise, whatever
// the ProducerConfig says: it never waits, drops, reclaims or overflows. A
// refused message is counted as a full event, not as a drop: the caller
// still has it. ErrTooLarge and ErrClosed as for Write.
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
// docs/benchmarks.md). When the ring fills, the ProducerConfig applies to
// the rest as for Write: a waiting producer waits (until ctx is done) and
// goes on; Drop writes what fits, counts the rest as drops, and returns
// ErrFull; Overflow routes the rest. It returns the number of messages
// written (or routed), with the error that stopped it, if any. As for
// Write, ctx is looked at only when the ring is full; a nil ctx returns
// [io/fs.ErrInvalid].
func (p *Producer) WriteBatch(ctx context.Context, msgs [][]byte) (int, error) {
	if p.closed.Load() {
		return 0, p.errClosed()
	}
	if ctx == nil {
		return 0, errNilContext
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
		return p.writeBatchWaiting(ctx, msgs, done)
	}
	return done, nil
}

// writeBatchWaiting is the rest of a WriteBatch that found the ring full:
// registered as waiting until it returns, so that Ring.Close, which wakes
// its waits, never unmaps the segment under the writes between them.
func (p *Producer) writeBatchWaiting(ctx context.Context, msgs [][]byte, done int) (int, error) {
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
		err := p.waitFor(ctx, len(msgs)-done, func() (bool, error) {
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

// Claim reserves room for a message of up to n bytes and returns the slice
// to fill, inside the ring (zero-copy); Commit publishes it, Abort gives
// the room back. When the ring is full the producer waits as for Write
// (until ctx is done); a producer that does not wait (Drop, DropOldest,
// Overflow: there is no message to route yet) returns ErrFull, counted as
// a drop. The slice must not be used after Commit or Abort, nor after
// Close or Ring.Close (which abandon the claim and unmap the ring). A nil
// ctx returns [io/fs.ErrInvalid].
func (p *Producer) Claim(ctx context.Context, n int) ([]byte, error) {
	if p.closed.Load() {
		return nil, p.errClosed()
	}
	if ctx == nil {
		return nil, errNilContext
	}
	if raceChecks {
		p.use.enter("Producer", opClaim)
		defer p.use.exit()
	}
	b, err := p.rp.Claim(n)
	if err != ring.ErrFull {
		return b, err
	}
	err = p.waitFor(ctx, 1, func() (bool, error) {
		var e error
		b, e = p.rp.Claim(n)
		return notFull(e)
	}, nil)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Commit publishes the first n bytes of the claimed message (n from 0 to
// the size claimed): claim the most a message may need, commit what it
// took. Without a claim it returns an error; ErrClosed after Close or
// Ring.Close (the claim was abandoned).
func (p *Producer) Commit(n int) error {
	if p.closed.Load() {
		return p.errClosed()
	}
	if raceChecks {
		p.use.enter("Producer", opCommit)
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
