package route_test

import (
	"context"
	"sync"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/route"
)

// BenchmarkSend: one router over 4 rings, each drained by a goroutine of
// this process; 64-byte messages. The cost of picking a ring and
// counting, on top of a TryWrite.
func BenchmarkSend(b *testing.B) {
	for _, by := range []route.Strategy{route.LeastDepth, route.RoundRobin, route.ByKey} {
		b.Run(by.String(), func(b *testing.B) {
			var rings []*ipc.Ring
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			for i := 0; i < 4; i++ {
				r, err := ipc.Create(testutilName(b), ipc.Config{})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
				if err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					for ctx.Err() == nil {
						_, _ = c.Read(ctx, 256, func([]byte) {})
					}
				}()
				rings = append(rings, r)
			}
			rt, err := route.New(rings, &route.Config{By: by})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			msg, key := make([]byte, 64), []byte("key")
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if by == route.ByKey {
					err = rt.SendKey(ctx, key, msg)
				} else {
					err = rt.Send(ctx, msg)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTryWrite is the floor: one producer's TryWrite on a drained ring.
func BenchmarkTryWrite(b *testing.B) {
	r, err := ipc.Create(testutilName(b), ipc.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{Strategy: ipc.Park}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		for ctx.Err() == nil {
			_, _ = c.Read(ctx, 256, func([]byte) {})
		}
	}()
	defer func() { cancel(); <-done }()
	p, err := r.Producer(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	msg := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		for p.TryWrite(msg) != nil {
		}
	}
}
