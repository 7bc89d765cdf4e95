package ipc

import (
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
	cw       ring.WaitLine          // the consumer's wait words, to wake it
	bell     *bellCache             // FlagDoorbell: the doorbell rule (doorbell.go); else nil
	stop     chan struct{}          // MPSC: ends the heartbeat goroutine
	done     chan struct{}
}

// Producer takes the producer role of the ring, configured by cfg (nil:
// every default). The role is held by an open-file-description lock on the
// segment, which the kernel drops if this process dies, so a restarted
// producer can take it again. It fails with [ErrBusy] if an SPSC ring has
// a producer already (or the MPSC slot asked for, or every slot, is held),
// and with [io/fs.ErrInvalid] for a cfg no producer of this ring can follow
// (an unknown Full or Strategy, a negative count or duration, an ID out of
// range, Full DropOldest on a ring created without Config.DropOldest).
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
	if err := r.writable("producer"); err != nil {
		return nil, err
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
		return nil, fmt.Errorf("ipc: %q was not created for drop-oldest (Config.DropOldest, ringctl create --drop-oldest): %w", r.Path(), errs.ErrInvalid)
	}
	p = pad.New[Producer]()
	*p = Producer{r: r, policy: pol, slot: cfg.ID - 1, overflow: cfg.Overflow, throttle: cfg.Throttle, side: side}
	registerBarrier()
	p.side.wp = r.r.ProducerWaitLine()
	p.side.mode, _ = r.r.OverrideWords()
	p.side.peerAlive = r.consumerAlive
	p.side.depth = r.depth
	p.side.closed = &p.closed
	p.side.errPeer = peerDeadError(r.Path(), false, p.side.peerTimeout)
	p.cw = r.r.ConsumerWaitLine()
	p.bell = newBellCache(r)
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
	if p.bell != nil {
		p.bell.drop()
	}
	return errors.Join(p.lock.Unlock())
}
