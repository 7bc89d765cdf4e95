package bridge_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/ipc"
)

// An in-bridge from a JetStream stream into a local ring: an embedded
// server here (a real one in production), a stream with three messages,
// a ring created with sequences, the bridge running, a consumer reading.
func ExampleNewIn() {
	dir, _ := os.MkdirTemp("", "natstest")
	defer os.RemoveAll(dir)
	srv, err := natstest.New(dir, 0)
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()

	// The stream, with three orders in it.
	ctx := context.Background()
	nc, _ := nats.Connect(srv.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	_, _ = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	for _, o := range []string{"buy 10", "sell 3", "buy 7"} {
		_, _ = js.Publish(ctx, "orders.new", []byte(o))
	}

	// The ring: the bridge needs sequences.
	name := fmt.Sprintf("bridge-example-%d", os.Getpid())
	r, err := ipc.Create(name, ipc.Config{Sequences: true, HighWater: 512 << 10, LowWater: 128 << 10})
	if err != nil {
		panic(err)
	}
	defer ipc.Remove(name)
	defer r.Close()

	b, err := bridge.NewIn(ctx, r, bridge.InConfig{URL: srv.URL(), Stream: "ORDERS", Consumer: "to-ring", CreateConsumer: true})
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()

	c, _ := r.Consumer(nil)
	for read := 0; read < 3; {
		n, _ := c.Read(ctx, 8, func(msg []byte) { fmt.Println(string(msg)) })
		read += n
	}
	_ = c.Close()

	stop()
	<-done
	_ = b.Close()
	fmt.Println("written:", b.Stats().Written)
	// Output:
	// buy 10
	// sell 3
	// buy 7
	// written: 3
}

// An out-bridge from a local ring to a JetStream stream: an embedded
// server here, a stream capturing the subject, three messages written into
// the ring, the bridge publishing them, the stream read back.
func ExampleNewOut() {
	dir, _ := os.MkdirTemp("", "natstest")
	defer os.RemoveAll(dir)
	srv, err := natstest.New(dir, 0)
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	ctx := context.Background()
	nc, _ := nats.Connect(srv.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	str, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TRADES", Subjects: []string{"trades.>"}})

	name := fmt.Sprintf("bridge-out-example-%d", os.Getpid())
	r, err := ipc.Create(name, ipc.Config{Sequences: true})
	if err != nil {
		panic(err)
	}
	defer ipc.Remove(name)
	defer r.Close()

	b, err := bridge.NewOut(ctx, r, bridge.OutConfig{URL: srv.URL(), Subject: "trades.local"})
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()

	p, _ := r.Producer(nil)
	for _, t := range []string{"AAPL 10", "MSFT 3", "NVDA 7"} {
		_ = p.Write(ctx, []byte(t))
	}
	_ = p.Close()
	for b.Stats().Released < 3 {
		time.Sleep(time.Millisecond) // until the stream has acknowledged all three
	}
	stop()
	<-done
	_ = b.Close()

	c, _ := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	mb, _ := c.Fetch(3)
	for m := range mb.Messages() {
		id := m.Headers().Get("Nats-Msg-Id")
		fmt.Println(string(m.Data()), id[strings.LastIndexByte(id, ':'):]) // ring ID:slot:sequence
	}
	// Output:
	// AAPL 10 :1
	// MSFT 3 :2
	// NVDA 7 :3
}
