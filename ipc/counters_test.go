package ipc_test

import (
	"context"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// counters returns every event counter of a ring by name (the gauges,
// positions and settings are left out: they are not events; so are the
// fields that are not numbers, such as the attachment flags, the creation
// options, the overrides' names, Pressure and the per-slot list).
func counters(t *testing.T, r *ipc.Ring) map[string]uint64 {
	t.Helper()
	st, err := r.Stats()
	require.NoError(t, err)
	skip := map[string]bool{"Capacity": true, "MaxMessage": true, "ProducerPos": true, "ConsumerPos": true, "Depth": true,
		"HighWater": true, "Window": true, "PressureHigh": true, "PressureLow": true,
		"TargetDelay": true, "DelayInterval": true, "ConsumerHeartbeat": true,
		// Sequence words, not counters: every write and read moves them
		// (TestSequencesSurviveKill and the sequence tests check them).
		"LastSeq": true, "SeqBegun": true, "DelivSeq": true}
	out := map[string]uint64{}
	v := reflect.ValueOf(st)
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if skip[f.Name] {
			continue
		}
		switch x := v.Field(i); x.Kind() {
		case reflect.Uint64, reflect.Uint32:
			out[f.Name] = x.Uint()
		case reflect.Array:
			for k := 0; k < x.Len(); k++ {
				out[f.Name] += x.Index(k).Uint()
			}
		}
	}
	return out
}

func changed(before, after map[string]uint64) []string {
	var out []string
	for k, v := range after {
		if before[k] != v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestEachCounterMovesOnItsEvent: each event moves exactly its counters
// and no other (waits, whose length is the scheduler's, may also count
// spins and yields; those are listed as allowed).
func TestEachCounterMovesOnItsEvent(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120, Timestamps: true, Sequences: true,
		HighWater: 512, LowWater: 256})
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	require.NoError(t, err)
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	msg := make([]byte, 120)
	read := func(n int) {
		got, err := c.TryRead(n, func([]byte) {})
		require.NoError(t, err)
		require.Equal(t, n, got)
	}
	step := func(name string, want []string, allowed []string, event func()) {
		t.Helper()
		before := counters(t, r)
		event()
		got := changed(before, counters(t, r))
		var must []string
		for _, g := range got {
			ok := false
			for _, a := range allowed {
				ok = ok || a == g
			}
			if !ok {
				must = append(must, g)
			}
		}
		sort.Strings(want)
		if len(must) == 0 {
			must = nil
		}
		require.Equal(t, want, must, "%s changed %v", name, got)
	}
	step("write", []string{"MsgsIn", "BytesIn"}, nil, func() { require.NoError(t, p.Write(ctx, []byte("hello"))) })
	step("read", []string{"MsgsOut", "BytesOut", "DelayCount", "DelaySum", "DelayBuckets"}, nil, func() { read(1) })
	step("fill to the high level", []string{"MsgsIn", "BytesIn", "PressureChanges"}, nil, func() {
		for i := 0; i < 4; i++ {
			require.NoError(t, p.Write(ctx, msg))
		}
	})
	step("fill up", []string{"MsgsIn", "BytesIn"}, nil, func() {
		for i := 0; i < 2; i++ { // 144-byte records: 6 from position 32, the 7th needs padding
			require.NoError(t, p.Write(ctx, msg))
		}
	})
	step("drop", []string{"FullEvents", "Drops"}, nil, func() { require.ErrorIs(t, p.Write(ctx, msg), ipc.ErrFull) })
	step("try-write refused", []string{"FullEvents"}, nil, func() { require.ErrorIs(t, p.TryWrite(msg), ipc.ErrFull) })
	step("drain below the low level", []string{"MsgsOut", "BytesOut", "DelayCount", "DelaySum", "DelayBuckets", "PressureChanges"}, nil, func() {
		read(6)
		_, err := c.TryRead(1, func([]byte) {}) // loads the producer position: the exact depth
		require.NoError(t, err)
	})
	step("duplicate", []string{"MsgsIn", "BytesIn", "Duplicates"}, nil, func() {
		ps, err := p.Stats()
		require.NoError(t, err)
		seq := ps.NextSeq - 1 // the last message's sequence
		require.NoError(t, p.WriteSeq(ctx, seq, []byte("again")))
		_, err = c.TryRead(1, func([]byte) { t.Fatal("a duplicate was delivered") })
		require.NoError(t, err)
	})
	require.NoError(t, p.Close())

	// Waiting: a parked consumer woken by a write; a parked producer woken
	// by a read.
	pp, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	require.NoError(t, err)
	defer pp.Close()
	waitOK := []string{"Spins", "Yields", "ConsumerSpins", "ConsumerYields"}
	step("consumer parks and is woken", []string{"ConsumerParks", "ConsumerWakeups", "MsgsIn", "BytesIn", "MsgsOut", "BytesOut", "DelayCount", "DelaySum", "DelayBuckets"}, waitOK, func() {
		done := make(chan error)
		parks := counters(t, r)["ConsumerParks"]
		go func() { _, err := c.Read(ctx, 1, func([]byte) {}); done <- err }()
		waitUntil(t, func() bool { return counters(t, r)["ConsumerParks"] > parks }, true)
		require.NoError(t, pp.Write(ctx, []byte("wake")))
		require.NoError(t, <-done)
	})
	for pp.TryWrite(msg) == nil {
	}
	step("producer parks and is woken", []string{"ProducerParks", "ProducerWakeups", "FullEvents", "MsgsIn", "BytesIn", "MsgsOut", "BytesOut", "DelayCount", "DelaySum", "DelayBuckets"}, append(waitOK, "PressureChanges"), func() {
		done := make(chan error)
		parks := counters(t, r)["ProducerParks"]
		go func() { done <- pp.Write(ctx, msg) }()
		waitUntil(t, func() bool { return counters(t, r)["ProducerParks"] > parks }, true)
		read(1)
		require.NoError(t, <-done)
	})
}

// TestOverflowAndSpinCounters: the overflow route and a spinning producer.
func TestOverflowAndSpinCounters(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 10, MaxMessage: 120})
	p, err := r.Producer(&ipc.ProducerConfig{Overflow: func([]byte) error { return nil }})
	require.NoError(t, err)
	ctx := context.Background()
	msg := make([]byte, 120)
	for p.TryWrite(msg) == nil {
	}
	before := counters(t, r)
	require.NoError(t, p.Write(ctx, msg))
	require.Equal(t, []string{"FullEvents", "Overflowed"}, changed(before, counters(t, r)))
	require.NoError(t, p.Close())

	// The wait hook is first consulted after spinsPerYield pauses and a
	// yield: once it has been, both counters must move (a condition, where
	// a sleep would depend on the spinning goroutine getting the CPU).
	spun := make(chan struct{})
	var once sync.Once
	sp, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{Strategy: ipc.Spin, Hook: func(ipc.WaitInfo) error {
		once.Do(func() { close(spun) })
		return nil // keep waiting
	}}})
	require.NoError(t, err)
	defer sp.Close()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	before = counters(t, r)
	done := make(chan error)
	go func() { done <- sp.Write(ctx, msg) }()
	select {
	case <-spun:
	case err := <-done:
		t.Fatalf("the write returned %v instead of spinning", err)
	case <-time.After(2 * time.Minute): // only a stuck test meets it
		t.Fatal("the producer never spun")
	}
	_, err = c.TryRead(1, func([]byte) {})
	require.NoError(t, err)
	require.NoError(t, <-done)
	got := changed(before, counters(t, r))
	require.Subset(t, got, []string{"FullEvents", "Spins", "Yields", "MsgsIn", "BytesIn", "MsgsOut", "BytesOut"})
	require.NotContains(t, got, "Drops")
}

// TestCountersExactOnPlainRing: a plain ring's writes (the fast path of
// ring.Producer.TryWrite and WriteBatch) and the general path's (a wrap, a
// full ring) leave MsgsIn and BytesIn exact when each call returns, as
// another handle on the segment (what ringctl and a metrics exporter
// open) sees them while the producer is idle and after it is closed.
func TestCountersExactOnPlainRing(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 12, MaxMessage: 200})
	other, err := ipc.Open(r.Path())
	require.NoError(t, err)
	defer func() { require.NoError(t, other.Close()) }()
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	require.NoError(t, err)
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	var msgs, bytes uint64
	check := func(what string) {
		t.Helper()
		st, err := other.Stats()
		require.NoError(t, err)
		require.Equal(t, msgs, st.MsgsIn, "%s: MsgsIn", what)
		require.Equal(t, bytes, st.BytesIn, "%s: BytesIn", what)
	}
	for i := range 300 { // about 12 laps of the ring: wraps on the way
		m := make([]byte, 1+i%200)
		require.NoError(t, p.Write(ctx, m))
		msgs, bytes = msgs+1, bytes+uint64(len(m))
		check("after Write")
		batch := [][]byte{make([]byte, i%50), make([]byte, 7), make([]byte, 64)}
		n, err := p.WriteBatch(ctx, batch)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		msgs, bytes = msgs+3, bytes+uint64(i%50+7+64)
		check("after WriteBatch")
		_, err = c.TryRead(4, func([]byte) {})
		require.NoError(t, err)
	}
	for { // fill the ring: the last write finds it full and is dropped
		err := p.Write(ctx, make([]byte, 100))
		if err != nil {
			require.ErrorIs(t, err, ipc.ErrFull)
			break
		}
		msgs, bytes = msgs+1, bytes+100
	}
	check("idle, full")
	require.NoError(t, p.Close())
	check("after Close")
}
