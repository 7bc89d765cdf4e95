package ipc

import (
	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ring"
)

// Package ops (the operator tools: Doctor, Peek, SetPolicy, ...) works on
// a Ring's internals through internal/handle, so that ipc exports nothing
// for it. Only ops, route (for its routing counters, line 12) and bridge
// (to store its bridge block, lines 13 and 14) call handle.Of.
// Package waitset (many rings, one consumer) reaches a Consumer's read and
// wait internals through handle.ConsumerOf, the same way.
func init() {
	handle.Of = func(r any) *handle.Ring { return r.(*Ring).handle() }
	handle.ConsumerOf = func(c any) *handle.Consumer { return c.(*Consumer).handle() }
}

// handle returns r's internals for package ops.
func (r *Ring) handle() *handle.Ring {
	return &handle.Ring{
		Seg:        r.seg,
		R:          r.r,
		Enter:      r.enter,
		Leave:      r.leave,
		Inspect:    r.inspect,
		SlotAlive:  r.slotAlive,
		SlotLocked: r.slotLocked,
		Slot: func(i int) (any, error) {
			sl := r.r.Slot(i)
			alive, err := r.slotLiveness(i, sl)
			return slotStats(sl, alive, r.r.Sequences()), err
		},
		Consumer: func() (*ring.Consumer, func() error, error) {
			c, err := r.newConsumer(&ConsumerConfig{Wait: Wait{Strategy: Spin}})
			if err != nil {
				return nil, nil, err
			}
			return c.rc, c.Close, nil
		},
	}
}

// handle returns c's internals for package waitset.
func (c *Consumer) handle() *handle.Consumer {
	return &handle.Consumer{
		Line:           c.side.wp,
		Closed:         &c.closed,
		TryRead:        c.tryReadBatch,
		RecoverIn:      c.recoverIn,
		CheckIdle:      c.checkIdle,
		ProducersAlive: c.r.producersAlive,
		Produced:       c.rc.Produced,
		Enter:          c.r.enter,
		Leave:          c.r.leave,
		BeginWait:      func() bool { return c.r.beginWait(&c.closed) },
		EndWait:        c.r.endWait,
		OnShut:         func(f func()) { c.onShut.Store(&f) },
		Doorbell:       c.r.r.DoorbellLine(),
		Flagged:        c.r.r.Doorbell(),
		Dir:            c.r.seg.Dir(),
	}
}
