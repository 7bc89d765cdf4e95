package route

import (
	"time"

	"github.com/shmring/shmring/ipc"
)

// sampler samples every ring each Sample until Close. It is the only
// caller of Ring.Stats: Send reads what it stores.
func (rt *Router) sampler() {
	defer rt.done.Done()
	t := time.NewTicker(rt.cfg.Sample)
	defer t.Stop()
	for {
		select {
		case <-rt.stop:
			return
		case now := <-t.C:
			rt.sample(now)
		}
	}
}

// sample takes one sample of every ring.
func (rt *Router) sample(now time.Time) {
	for _, l := range rt.lanes {
		sent := l.sent.Load() // before Stats: the depth it reads includes at least these
		st, err := l.r.Stats()
		rt.sampleLane(l, st, err, now)
		if err == nil {
			l.base.Store(int64(st.Depth) - int64(sent))
		}
		l.flush(now)
	}
	rt.samples.Add(1)
}

// sampleLane decides l's health from st (err: Stats failed) at now.
//
//   - Dead: no process holds the consumer role (Stats.ConsumerAttached),
//     or the ring cannot be read (closed, damaged): nobody will consume.
//   - Stalled: messages wait (Depth > 0) and the consumer position has not
//     moved for StallAfter.
//   - Healthy otherwise. A consumer that comes back (attaches, or moves)
//     returns the ring to the rotation at this sample.
func (rt *Router) sampleLane(l *lane, st ipc.Stats, err error, now time.Time) {
	h := Healthy
	switch {
	case err != nil || !st.ConsumerAttached:
		h = Dead
		l.lastProgress = now // a consumer that attaches gets StallAfter from then
	case st.ConsumerPos != l.lastPos || st.Depth == 0:
		l.lastPos, l.lastProgress = st.ConsumerPos, now
	case now.Sub(l.lastProgress) >= rt.cfg.StallAfter:
		h = Stalled
	}
	if err == nil {
		l.lastPos = st.ConsumerPos
		l.depth.Store(st.Depth)
		l.pressured.Store(st.Pressure.Depth || st.Pressure.Delay)
	}
	old := Health(l.health.Swap(uint32(h)))
	switch {
	case old == Healthy && h != Healthy:
		l.left.Add(1)
	case old != Healthy && h == Healthy:
		l.returned.Add(1)
	}
}
