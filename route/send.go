package route

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/shmring/shmring/ipc"
)

var (
	errNeedKey  = fmt.Errorf("route: a ByKey router sends with SendKey or TrySendKey (the key picks the ring): %w", fs.ErrInvalid)
	errNotByKey = fmt.Errorf("route: SendKey needs a router made with By: ByKey; use Send: %w", fs.ErrInvalid)
	// errNoRoom is Send's error under Full ipc.Drop, and TrySend's: one
	// value, so that a drop allocates nothing.
	errNoRoom = fmt.Errorf("route: no ring in the rotation has room: %w", ipc.ErrFull)
)

// Send writes msg to one ring chosen by the strategy (LeastDepth or
// RoundRobin; a ByKey router sends with SendKey). When no ring takes it
// (each is full or out of the rotation) Config.Full decides: wait for room
// on a ring in the rotation, as Config.Wait says, until ctx ends (its error
// then, the message counted in Stats.Dropped); Drop: an error matching
// ipc.ErrFull at once, counted; Overflow: the route's error. ctx is looked at
// only when no ring has room. It returns an error matching ipc.ErrTooLarge
// for a message above a ring's largest, and ipc's errors for a ring that
// fails (ErrClosed, ErrCorrupt). nil: the message is in exactly one ring.
//
// The fast path makes no system call, reads no clock and allocates
// nothing: one TryWrite on the chosen ring.
func (rt *Router) Send(ctx context.Context, msg []byte) error {
	if rt.cfg.By == ByKey {
		return errNeedKey
	}
	if ok, err := rt.try(msg, -1); ok || err != nil {
		return err
	}
	return rt.full(ctx, msg, -1)
}

// TrySend is Send that never waits, drops or overflows: it returns an
// error matching ipc.ErrFull when no ring in the rotation takes msg (not
// counted as dropped: the caller still has it).
func (rt *Router) TrySend(msg []byte) error {
	if rt.cfg.By == ByKey {
		return errNeedKey
	}
	return rt.tryOnly(msg, -1)
}

// SendKey is Send for a ByKey router: msg goes to the ring key hashes to
// (FNV-1a, modulo the number of rings), so that messages with equal keys
// keep their order; with Config.Spill it may go to the next healthy ring
// instead when that one is pressured, full or out of the rotation. Without
// Spill a full keyed ring is waited for (or Config.Full applies) whatever
// the other rings hold, and a keyed ring out of the rotation still gets its
// key's messages while it has room: its restarted consumer finds them in
// order.
func (rt *Router) SendKey(ctx context.Context, key, msg []byte) error {
	if rt.cfg.By != ByKey {
		return errNotByKey
	}
	k := rt.keyRing(key)
	if ok, err := rt.try(msg, k); ok || err != nil {
		return err
	}
	return rt.full(ctx, msg, k)
}

// TrySendKey is SendKey that never waits, drops or overflows (see TrySend).
func (rt *Router) TrySendKey(key, msg []byte) error {
	if rt.cfg.By != ByKey {
		return errNotByKey
	}
	return rt.tryOnly(msg, rt.keyRing(key))
}

// keyRing returns the index of the ring key maps to: FNV-1a (64-bit)
// modulo the number of rings, the same in every process.
func (rt *Router) keyRing(key []byte) int {
	h := uint64(14695981039346656037)
	for _, b := range key {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return int(h % uint64(len(rt.lanes)))
}

func (rt *Router) tryOnly(msg []byte, key int) error {
	ok, err := rt.try(msg, key)
	switch {
	case err != nil:
		return err
	case !ok:
		return errNoRoom
	}
	return nil
}

// try offers msg to the rings in the strategy's order with TryWrite. ok:
// one took it; err: a ring failed otherwise than full.
func (rt *Router) try(msg []byte, key int) (ok bool, err error) {
	switch {
	case key >= 0:
		return rt.tryKey(msg, key)
	case rt.cfg.By == RoundRobin:
		return rt.tryRR(msg)
	default:
		return rt.tryLeast(msg)
	}
}

// put writes msg to l without waiting and counts it.
func (rt *Router) put(l *lane, msg []byte) (bool, error) {
	err := l.p.TryWrite(msg)
	if err == nil {
		rt.routed(l, msg)
		return true, nil
	}
	if errors.Is(err, ipc.ErrFull) {
		l.full, l.fullGen = true, rt.samples.Load()
		return false, nil
	}
	return false, fmt.Errorf("route: %s: %w", filepath.Base(l.name), err)
}

// routed counts msg as written to l. Single writer: a load and a store,
// no locked instruction.
func (rt *Router) routed(l *lane, msg []byte) {
	l.routed.Store(l.routed.Load() + 1)
	l.sent.Store(l.sent.Load() + (l.over+uint64(len(msg))+7)&^7)
}

// inc adds one to a counter that only the sending goroutine writes.
func inc(c *atomic.Uint64) { c.Store(c.Load() + 1) }

func (l *lane) healthy() bool { return Health(l.health.Load()) == Healthy }

// estimate is l's depth as the router knows it: the last sample plus what
// it sent since.
func (l *lane) estimate() int64 { return l.base.Load() + int64(l.sent.Load()) }

// tryLeast offers msg to the healthy rings from the shallowest up; equal
// depths are taken in turn.
func (rt *Router) tryLeast(msg []byte) (bool, error) {
	n := len(rt.lanes)
	var tried uint64
	for first := true; ; first = false {
		best, bestD := -1, int64(0)
		for k := 0; k < n; k++ {
			i := rt.next + k
			if i >= n {
				i -= n
			}
			l := rt.lanes[i]
			if tried&(1<<i) != 0 {
				continue
			}
			if !l.healthy() {
				if first && !rt.retrying {
					inc(&l.skipped)
				}
				continue
			}
			if d := l.estimate(); best < 0 || d < bestD {
				best, bestD = i, d
			}
		}
		if best < 0 {
			return false, nil
		}
		tried |= 1 << best
		ok, err := rt.put(rt.lanes[best], msg)
		if ok {
			rt.next = (best + 1) % n
		}
		if ok || err != nil {
			return ok, err
		}
	}
}

// tryRR offers msg to the healthy rings in turn, first those not
// pressured (Pressure raised at the last sample, or full since it), then
// the pressured ones not known full.
func (rt *Router) tryRR(msg []byte) (bool, error) {
	n := len(rt.lanes)
	gen := rt.samples.Load()
	var pressured uint64
	for k := 0; k < n; k++ {
		i := (rt.next + k) % n
		l := rt.lanes[i]
		if !l.healthy() {
			if !rt.retrying {
				inc(&l.skipped)
			}
			continue
		}
		if l.pressured.Load() || (l.full && l.fullGen == gen) {
			pressured |= 1 << i
			continue
		}
		ok, err := rt.put(l, msg)
		if ok {
			rt.next = (i + 1) % n
		}
		if ok || err != nil {
			return ok, err
		}
	}
	for k := 0; pressured != 0 && k < n; k++ {
		i := (rt.next + k) % n
		l := rt.lanes[i]
		if pressured&(1<<i) == 0 || (l.full && l.fullGen == gen) {
			continue
		}
		ok, err := rt.put(l, msg)
		if ok {
			rt.next = (i + 1) % n
		}
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// tryKey offers msg to ring key; with Spill, when that one is out of the
// rotation, pressured or full, to the next healthy rings after it (not
// pressured first), counting the spill on ring key.
func (rt *Router) tryKey(msg []byte, key int) (bool, error) {
	l := rt.lanes[key]
	if !rt.cfg.Spill {
		return rt.put(l, msg)
	}
	healthy := l.healthy()
	if healthy && !l.pressured.Load() {
		if ok, err := rt.put(l, msg); ok || err != nil {
			return ok, err
		}
	}
	if !healthy && !rt.retrying {
		inc(&l.skipped)
	}
	n := len(rt.lanes)
	for pass := 0; pass < 2; pass++ {
		for k := 1; k < n; k++ {
			m := rt.lanes[(key+k)%n]
			if !m.healthy() || m.pressured.Load() != (pass == 1) {
				continue
			}
			ok, err := rt.put(m, msg)
			if ok {
				inc(&l.spilled)
			}
			if ok || err != nil {
				return ok, err
			}
		}
	}
	if healthy && l.pressured.Load() {
		return rt.put(l, msg)
	}
	return false, nil
}

// full applies Config.Full to msg, which no ring took.
func (rt *Router) full(ctx context.Context, msg []byte, key int) error {
	switch {
	case rt.cfg.Overflow != nil:
		inc(&rt.overflowed)
		return rt.cfg.Overflow(msg)
	case rt.cfg.Full == ipc.Drop:
		inc(&rt.dropped)
		return errNoRoom
	case ctx == nil:
		return fmt.Errorf("route: nil context: %w", fs.ErrInvalid)
	}
	rt.retrying = true // a message is skipped past a ring once, not at every retry
	defer func() { rt.retrying = false }()
	for {
		if t := rt.waitTarget(key); t < 0 {
			// Nothing in the rotation: wait for a sample to bring a ring back.
			if err := sleep(ctx, rt.cfg.Sample); err != nil {
				inc(&rt.dropped)
				return err
			}
		} else {
			l := rt.lanes[t]
			err := l.p.Write(ctx, msg)
			switch {
			case err == nil:
				rt.routed(l, msg)
				if key >= 0 && t != key {
					inc(&rt.lanes[key].spilled)
				}
				return nil
			case errors.Is(err, errReroute):
			case errors.Is(err, ipc.ErrPeerDead):
				// Its consumer is gone; the next sample takes it out of
				// the rotation (or, ByKey, brings the consumer back).
				if err := sleep(ctx, rt.cfg.Sample); err != nil {
					inc(&rt.dropped)
					return err
				}
			case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, ipc.ErrFull):
				// ctx ended (ipc may see its deadline pass before ctx
				// says so), or the caller's hook gave up: not sent.
				inc(&rt.dropped) // ipc counted it in the ring's drops too
				return err
			default:
				return fmt.Errorf("route: %s: %w", filepath.Base(l.name), err)
			}
		}
		if ok, err := rt.try(msg, key); ok || err != nil {
			return err
		}
	}
}

// waitTarget is the ring full waits on: the keyed ring (ByKey without
// Spill, whatever its health; with Spill, while it is healthy), else the
// shallowest healthy ring; -1 if none is healthy.
func (rt *Router) waitTarget(key int) int {
	if key >= 0 && (!rt.cfg.Spill || rt.lanes[key].healthy()) {
		return key
	}
	best, bestD := -1, int64(0)
	for i, l := range rt.lanes {
		if !l.healthy() {
			continue
		}
		if d := l.estimate(); best < 0 || d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// sleep waits d or until ctx is done (its error then).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
