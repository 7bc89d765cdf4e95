package ipc_test

import (
	"context"
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

	r, err := ipc.Create(name, ipc.WithCapacity(64<<10))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	p, _ := r.Producer(ipc.WithPolicy(ipc.Spin))
	c, _ := r.Consumer()
	for _, m := range []string{"buy 10", "sell 5"} {
		_ = p.Write([]byte(m))
	}
	for range 2 {
		_ = c.Read(context.Background(), func(msg []byte) { fmt.Println(string(msg)) })
	}
	st, _ := r.Stats()
	fmt.Println("in", st.MsgsIn, "out", st.MsgsOut, "depth", st.Depth)
	// Output:
	// buy 10
	// sell 5
	// in 2 out 2 depth 0
}

// The zero-copy path: claim room in the ring, fill it, commit.
func ExampleProducer_Claim() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "claim"), ipc.WithCapacity(4096))
	defer r.Close()
	p, _ := r.Producer()
	c, _ := r.Consumer()

	buf, _ := p.Claim(64)
	n := copy(buf, "written in place")
	_ = p.CommitN(n)

	_, _ = c.TryRead(func(msg []byte) { fmt.Printf("%q\n", msg) })
	// Output: "written in place"
}

// Many producers on an MPSC ring, each with its own slot; WriteBatch
// reserves room for a run of messages with one compare-and-swap. Each
// producer's messages arrive in its order.
func ExampleProducer_WriteBatch() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "logs"), ipc.WithKind(ipc.MPSC), ipc.WithProducers(4), ipc.WithCapacity(64<<10))
	defer r.Close()
	web, _ := r.Producer(ipc.WithProducerID(0))
	db, _ := r.Producer(ipc.WithProducerID(1))
	c, _ := r.Consumer()

	_, _ = web.WriteBatch([][]byte{[]byte("web: GET /"), []byte("web: GET /about")})
	_, _ = db.WriteBatch([][]byte{[]byte("db: slow query")})
	_, _ = c.TryReadBatch(10, func(msg []byte) { fmt.Println(string(msg)) })
	st, _ := r.Stats()
	fmt.Println("from slot 0:", st.Producers[0].MsgsIn, "from slot 1:", st.Producers[1].MsgsIn)
	// Output:
	// web: GET /
	// web: GET /about
	// db: slow query
	// from slot 0: 2 from slot 1: 1
}

// Drop refuses at once when the ring is full, and counts the drop.
func ExampleDrop() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "drop"), ipc.WithCapacity(1024), ipc.WithMaxMessage(120))
	defer r.Close()
	p, _ := r.Producer(ipc.WithPolicy(ipc.Drop))
	var err error
	for err == nil {
		err = p.Write(make([]byte, 120))
	}
	st, _ := r.Stats()
	fmt.Println(err, "- written", st.MsgsIn, "dropped", st.Drops)
	// Output: ring full - written 8 dropped 1
}

// DropOldest on an MPSC ring: two producers keep writing into a ring
// nobody reads; the oldest messages make room for the newest, and each one
// is either delivered or counted dropped.
func ExampleDropOldest() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "latest"), ipc.WithKind(ipc.MPSC), ipc.WithProducers(2),
		ipc.WithCapacity(1024), ipc.WithMaxMessage(100), ipc.WithDropOldest())
	defer r.Close()
	a, _ := r.Producer(ipc.WithPolicy(ipc.DropOldest))
	b, _ := r.Producer(ipc.WithPolicy(ipc.DropOldest))
	for i := range 50 {
		_ = a.Write([]byte(fmt.Sprintf("a%02d%s", i, make([]byte, 90))))
		_ = b.Write([]byte(fmt.Sprintf("b%02d%s", i, make([]byte, 90))))
	}
	c, _ := r.Consumer()
	var got []string
	_, _ = c.TryReadBatch(100, func(m []byte) { got = append(got, string(m[:3])) })
	st, _ := r.Stats()
	fmt.Println("newest:", got[len(got)-2:], "delivered + dropped:", uint64(len(got))+st.Drops)
	// Output: newest: [a49 b49] delivered + dropped: 100
}

// A consumer that favours throughput: after catching up it holds off for a
// few microseconds, so that a producer writing message by message is not
// robbed of its cache lines at every message (docs/benchmarks.md).
func ExampleWithCoalesce() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "bulk"), ipc.WithCapacity(64<<10))
	defer r.Close()
	p, _ := r.Producer()
	c, _ := r.Consumer(ipc.WithCoalesce(5 * time.Microsecond))
	for i := range 1000 {
		_ = p.Write([]byte{byte(i)})
	}
	total := 0
	for total < 1000 {
		n, _ := c.ReadBatch(context.Background(), 256, func([]byte) {})
		total += n
	}
	fmt.Println(total)
	// Output: 1000
}

// A header-commit ring: the consumer finds each message by its header
// instead of loading the producer's position. It is used exactly like any
// other SPSC ring; Stats and ringctl show the option.
func ExampleWithHeaderCommit() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "hc"), ipc.WithCapacity(4096), ipc.WithHeaderCommit())
	defer r.Close()
	p, _ := r.Producer()
	c, _ := r.Consumer()
	for _, m := range []string{"one", "two", "three"} {
		_ = p.Write([]byte(m))
	}
	_, _ = c.TryReadBatch(10, func(m []byte) { fmt.Print(string(m), " ") })
	fmt.Println(r.HeaderCommit())
	// Output: one two three true
}

// A producer that may resend a message after a crash gives it its sequence
// number; the consumer delivers it once.
func ExampleRetry() {
	dir, _ := os.MkdirTemp("", "shmring-example")
	defer os.RemoveAll(dir)
	r, _ := ipc.Create(filepath.Join(dir, "orders"), ipc.WithCapacity(4096), ipc.WithSequences())
	defer r.Close()
	p, _ := r.Producer(ipc.WithPolicy(ipc.Drop))
	c, _ := r.Consumer()

	seq := p.NextSeq()
	send := func() error { return p.WriteSeq(context.Background(), seq, []byte("buy 10")) }
	_ = ipc.Retry(context.Background(), ipc.RetryOptions{Attempts: 10}, send)
	_ = ipc.Retry(context.Background(), ipc.RetryOptions{Attempts: 10}, send) // a resend after a doubt

	_, _ = c.TryReadBatch(10, func(m []byte) { fmt.Println(string(m)) })
	st, _ := r.Stats()
	fmt.Println("duplicates discarded:", st.Duplicates)
	// Output:
	// buy 10
	// duplicates discarded: 1
}

// A ring in a sealed memfd, handed to another process over a Unix socket
// (here, for brevity, to this same process).
func ExampleCreateMemfd() {
	r, err := ipc.CreateMemfd("telemetry", ipc.WithCapacity(4096))
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

	p, _ := r.Producer()
	c, _ := other.Consumer()
	_ = p.Write([]byte("cpu=42%"))
	_, _ = c.TryRead(func(m []byte) { fmt.Println(string(m)) })
	// Output: cpu=42%
}
