package ipc_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shmring/shmring/ipc"
)

// A producer restarted after a crash resends the messages its predecessor
// may have died committing (InDoubt), with their sequences, then goes on:
// nothing is lost and nothing delivered twice.
func ExampleProducer_InDoubt() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "orders"), ipc.Config{Kind: ipc.MPSC, Capacity: 4096, Sequences: true})
	defer r.Close()
	sent := map[uint64]string{} // the application's own log: sequence -> message
	ctx := context.Background()
	cfg := &ipc.ProducerConfig{ID: 1} // the same ID after a restart: slot 0

	p, _ := r.Producer(cfg)
	_, next := p.InDoubt() // the sequence the first new message gets
	for _, m := range []string{"buy 10", "sell 5", "buy 7"} {
		sent[next] = m
		_ = p.Write(ctx, []byte(m))
		next++
	}
	_ = p.Close() // or a crash, at any instruction

	p, _ = r.Producer(cfg)
	defer p.Close()
	from, to := p.InDoubt()
	fmt.Printf("in doubt: [%d, %d)\n", from, to)
	for s := from; s < to; s++ {
		_ = p.WriteSeq(ctx, s, []byte(sent[s]))
	}
	_ = p.Write(ctx, []byte("sell 2"))

	c, _ := r.Consumer(nil)
	defer c.Close()
	_, _ = c.TryRead(10, func(m []byte) { fmt.Println(string(m)) })
	st, _ := r.Stats()
	fmt.Println("duplicates discarded:", st.Duplicates)
	// Output:
	// in doubt: [3, 4)
	// buy 10
	// sell 5
	// buy 7
	// sell 2
	// duplicates discarded: 1
}
