package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/shmring/shmring/ipc"
)

// A producer and a consumer on one ring. In real use they are two processes
// that both know the ring's name; here they share one for brevity.
func Example() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	name := filepath.Join(dir, "orders") // a bare name would live in /dev/shm

	r, err := ipc.Create(name, ipc.Config{Capacity: 64 << 10})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	p, _ := r.Producer(nil) // nil: every default
	defer p.Close()
	c, _ := r.Consumer(nil)
	defer c.Close()

	ctx := context.Background()
	for _, m := range []string{"buy 10", "sell 5"} {
		_ = p.Write(ctx, []byte(m))
	}
	read := 0
	for read < 2 {
		n, err := c.Read(ctx, 10, func(msg []byte) { fmt.Println(string(msg)) })
		if err != nil {
			fmt.Println(err)
			return
		}
		read += n
	}
	st, _ := r.Stats()
	fmt.Println("in", st.MsgsIn, "out", st.MsgsOut, "depth", st.Depth)
	// Output:
	// buy 10
	// sell 5
	// in 2 out 2 depth 0
}

// Batch hands the messages to a range loop instead of a callback: each
// Record's Data points into the ring until the loop ends, which releases
// what the loop saw; a break leaves the rest for the next batch.
func ExampleConsumer_Batch() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "events"), ipc.Config{Capacity: 4096})
	defer r.Close()
	p, _ := r.Producer(nil)
	c, _ := r.Consumer(nil)
	ctx := context.Background()
	for _, m := range []string{"start", "tick", "tick", "stop", "start"} {
		_ = p.Write(ctx, []byte(m))
	}

	for rec, err := range c.Batch(ctx, 10) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(rec.Data))
		if string(rec.Data) == "stop" {
			break // "stop" is consumed; "start" stays in the ring
		}
	}
	for rec, err := range c.Batch(ctx, 10) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("next batch:", string(rec.Data))
	}
	// Output:
	// start
	// tick
	// tick
	// stop
	// next batch: start
}

// A consumer that holds what it reads releases it later, up to a Record's
// Pos: here, once a (pretend) remote store has acknowledged it. What is
// not released stays in the ring, and the next consumer reads it again.
func ExampleConsumer_Release() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "outbox"), ipc.Config{Capacity: 4096, Sequences: true})
	defer r.Close()
	p, _ := r.Producer(nil)
	ctx := context.Background()
	for _, m := range []string{"a", "b", "c"} {
		_ = p.Write(ctx, []byte(m))
	}

	c, _ := r.Consumer(&ipc.ConsumerConfig{Hold: true})
	var acked uint64
	for rec, err := range c.Batch(ctx, 10) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("sent", string(rec.Data), "seq", rec.Seq)
		if string(rec.Data) == "b" {
			acked = rec.Pos // the store acknowledged a and b
		}
	}
	if err := c.Release(acked); err != nil {
		fmt.Println(err)
	}
	_ = c.Close() // or a crash: c is still held

	c, _ = r.Consumer(&ipc.ConsumerConfig{Hold: true})
	defer c.Close()
	for rec, err := range c.Batch(ctx, 10) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("again", string(rec.Data), "seq", rec.Seq)
	}
	// Output:
	// sent a seq 1
	// sent b seq 2
	// sent c seq 3
	// again c seq 3
}

// The zero-copy path: claim room for the largest message you may write,
// fill it in place, commit what you used.
func ExampleProducer_Claim() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "claim"), ipc.Config{Capacity: 4096})
	defer r.Close()
	p, _ := r.Producer(nil)
	c, _ := r.Consumer(nil)

	buf, err := p.Claim(context.Background(), 64)
	if err != nil {
		fmt.Println(err)
		return
	}
	n := copy(buf, "written in place")
	_ = p.Commit(n)

	_, _ = c.TryRead(1, func(msg []byte) { fmt.Printf("%q\n", msg) })
	// Output: "written in place"
}

// Many producers on an MPSC ring, each with its own slot (ID k is slot
// k-1); WriteBatch reserves room for a run of messages with one
// compare-and-swap. Each producer's messages arrive in its order.
func ExampleProducer_WriteBatch() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "logs"), ipc.Config{Kind: ipc.MPSC, Producers: 4, Capacity: 64 << 10})
	defer r.Close()
	web, _ := r.Producer(&ipc.ProducerConfig{ID: 1})
	db, _ := r.Producer(&ipc.ProducerConfig{ID: 2})
	c, _ := r.Consumer(nil)
	ctx := context.Background()

	_, _ = web.WriteBatch(ctx, [][]byte{[]byte("web: GET /"), []byte("web: GET /about")})
	_, _ = db.WriteBatch(ctx, [][]byte{[]byte("db: slow query")})
	_, _ = c.TryRead(10, func(msg []byte) { fmt.Println(string(msg)) })
	st, _ := r.Stats()
	for _, s := range st.Producers {
		fmt.Println("slot", s.Slot, "wrote", s.MsgsIn)
	}
	// Output:
	// web: GET /
	// web: GET /about
	// db: slow query
	// slot 0 wrote 2
	// slot 1 wrote 1
}

// Full Drop refuses at once when the ring is full, and counts the drop.
func ExampleDrop() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "drop"), ipc.Config{Capacity: 1024, MaxMessage: 120})
	defer r.Close()
	p, _ := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	var err error
	for err == nil {
		err = p.Write(context.Background(), make([]byte, 120))
	}
	st, _ := r.Stats()
	fmt.Println(errors.Is(err, ipc.ErrFull), "- written", st.MsgsIn, "dropped", st.Drops)
	// Output: true - written 8 dropped 1
}

// Full DropOldest on an MPSC ring: two producers keep writing into a ring
// nobody reads; the oldest messages make room for the newest, and each one
// is either delivered or counted dropped.
func ExampleDropOldest() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "latest"), ipc.Config{Kind: ipc.MPSC, Producers: 2,
		Capacity: 1024, MaxMessage: 100, DropOldest: true})
	defer r.Close()
	cfg := &ipc.ProducerConfig{Full: ipc.DropOldest}
	a, _ := r.Producer(cfg)
	b, _ := r.Producer(cfg)
	ctx := context.Background()
	for i := range 50 {
		_ = a.Write(ctx, []byte(fmt.Sprintf("a%02d%s", i, make([]byte, 90))))
		_ = b.Write(ctx, []byte(fmt.Sprintf("b%02d%s", i, make([]byte, 90))))
	}
	c, _ := r.Consumer(nil)
	var got []string
	_, _ = c.TryRead(100, func(m []byte) { got = append(got, string(m[:3])) })
	st, _ := r.Stats()
	fmt.Println("newest:", got[len(got)-2:], "delivered + dropped:", uint64(len(got))+st.Drops)
	// Output: newest: [a49 b49] delivered + dropped: 100
}

// One Wait value describes how a side waits; the producer and the consumer
// share it. Here both park (no CPU while waiting), and the consumer's wait
// is bounded by a context deadline, which its error says.
func ExampleWait() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "quiet"), ipc.Config{Capacity: 4096})
	defer r.Close()

	wait := ipc.Wait{Strategy: ipc.Park, PeerTimeout: 5 * time.Second}
	p, _ := r.Producer(&ipc.ProducerConfig{Wait: wait})
	c, _ := r.Consumer(&ipc.ConsumerConfig{Wait: wait})

	_ = p.Write(context.Background(), []byte("hello"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	for {
		_, err := c.Read(ctx, 1, func(m []byte) { fmt.Println(string(m)) })
		if err != nil {
			fmt.Println("then:", errors.Is(err, context.DeadlineExceeded))
			break
		}
	}
	// Output:
	// hello
	// then: true
}

// A consumer that favours throughput: after catching up it holds off for a
// few microseconds, so that a producer writing message by message is not
// robbed of its cache lines at every message (docs/benchmarks.md).
func ExampleConsumerConfig_coalesce() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "bulk"), ipc.Config{Capacity: 64 << 10})
	defer r.Close()
	p, _ := r.Producer(nil)
	c, _ := r.Consumer(&ipc.ConsumerConfig{Coalesce: 5 * time.Microsecond})
	ctx := context.Background()
	for i := range 1000 {
		_ = p.Write(ctx, []byte{byte(i)})
	}
	total := 0
	for total < 1000 {
		n, _ := c.Read(ctx, 256, func([]byte) {})
		total += n
	}
	fmt.Println(total)
	// Output: 1000
}

// A header-commit ring: the consumer finds each message by its header
// instead of loading the producer's position. It is used exactly like any
// other SPSC ring; Stats and ringctl show the option.
func ExampleConfig_headerCommit() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "hc"), ipc.Config{Capacity: 4096, HeaderCommit: true})
	defer r.Close()
	p, _ := r.Producer(nil)
	c, _ := r.Consumer(nil)
	for _, m := range []string{"one", "two", "three"} {
		_ = p.Write(context.Background(), []byte(m))
	}
	_, _ = c.TryRead(10, func(m []byte) { fmt.Print(string(m), " ") })
	st, _ := r.Stats()
	fmt.Println(st.HeaderCommit)
	// Output: one two three true
}

// Open takes no Config: the ring has the one it was created with, which
// Stats reports. WithReadOnly maps it for inspection only.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	name := filepath.Join(dir, "metrics")
	r, _ := ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: 8, Capacity: 8192})
	defer r.Close()
	p, _ := r.Producer(nil)
	_ = p.Write(context.Background(), []byte("up"))

	ro, err := ipc.Open(name, ipc.WithReadOnly())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ro.Close()
	st, _ := ro.Stats()
	fmt.Println(st.Kind, st.Slots, st.Capacity, "depth", st.Depth, "producer attached", st.ProducerAttached)
	_, err = ro.Consumer(nil)
	fmt.Println("consumer:", err != nil)

	_, err = ipc.Open(filepath.Join(dir, "nothing"))
	fmt.Println(errors.Is(err, os.ErrNotExist))
	// Output:
	// mpsc 8 8192 depth 16 producer attached true
	// consumer: true
	// true
}

// A producer that may resend a message (after a crash, or a write it is
// unsure of) gives it its sequence number; the consumer delivers it once.
func ExampleProducer_WriteSeq() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "orders"), ipc.Config{Capacity: 4096, Sequences: true})
	defer r.Close()
	p, _ := r.Producer(nil)
	c, _ := r.Consumer(nil)
	ctx := context.Background()

	st, _ := p.Stats()
	seq := st.NextSeq
	_ = p.WriteSeq(ctx, seq, []byte("buy 10"))
	_ = p.WriteSeq(ctx, seq, []byte("buy 10")) // a resend after a doubt

	_, _ = c.TryRead(10, func(m []byte) { fmt.Println(string(m)) })
	rs, _ := r.Stats()
	fmt.Println("duplicates discarded:", rs.Duplicates)
	// Output:
	// buy 10
	// duplicates discarded: 1
}

// A ring in a sealed memfd, handed to another process over a Unix socket
// (here, for brevity, to this same process).
func ExampleRing_Share() {
	r, err := ipc.Create("telemetry", ipc.Config{Capacity: 4096, Memfd: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	fds, _ := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	a, _ := net.FileConn(os.NewFile(uintptr(fds[0]), "a"))
	b, _ := net.FileConn(os.NewFile(uintptr(fds[1]), "b"))
	defer a.Close()
	defer b.Close()

	_ = r.Share(a.(*net.UnixConn))               // in the creating process
	other, err := ipc.Receive(b.(*net.UnixConn)) // in the other process
	if err != nil {
		fmt.Println(err)
		return
	}
	defer other.Close()

	p, _ := r.Producer(nil)
	c, _ := other.Consumer(nil)
	_ = p.Write(context.Background(), []byte("cpu=42%"))
	_, _ = c.TryRead(1, func(m []byte) { fmt.Println(string(m)) })
	// Output: cpu=42%
}
