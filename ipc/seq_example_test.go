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
	r, _ := ipc.Create(filepath.Join(dir, "orders"), ipc.WithKind(ipc.MPSC), ipc.WithCapacity(4096), ipc.WithSequences())
	defer r.Close()
	sent := map[uint64]string{} // the application's own log: sequence -> message

	p, _ := r.Producer(ipc.WithProducerID(0))
	for _, m := range []string{"buy 10", "sell 5", "buy 7"} {
		sent[p.NextSeq()] = m
		_ = p.Write([]byte(m))
	}
	_ = p.Close() // or a crash, at any instruction

	p, _ = r.Producer(ipc.WithProducerID(0))
	defer p.Close()
	from, to := p.InDoubt()
	fmt.Printf("in doubt: [%d, %d)\n", from, to)
	for s := from; s < to; s++ {
		_ = p.WriteSeq(context.Background(), s, []byte(sent[s]))
	}
	_ = p.Write([]byte("sell 2"))

	c, _ := r.Consumer()
	defer c.Close()
	_, _ = c.TryReadBatch(10, func(m []byte) { fmt.Println(string(m)) })
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
