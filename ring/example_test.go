package ring_test

import (
	"fmt"

	"github.com/shmring/shmring/ring"
)

// A ring over heap memory: format, attach, write, read a batch.
func Example() {
	cfg := ring.Config{Capacity: 4096}
	size, _ := ring.Size(cfg)
	region := make([]byte, size)
	_ = ring.Format(region, cfg)

	r, _ := ring.Attach(region)
	p, _ := r.NewProducer()
	c, _ := r.NewConsumer()
	_, _ = p.WriteBatch([][]byte{[]byte("one"), []byte("two"), []byte("three")})
	n, _ := c.ReadBatch(10, func(msg []byte) { fmt.Println(string(msg)) })
	fmt.Println(n, "records,", r.Stats().Depth, "bytes pending")
	// Output:
	// one
	// two
	// three
	// 3 records, 0 bytes pending
}
