package bridge_test

import (
	"context"
	"fmt"
	"os"

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
