// Package bench measures shmring against what users would use instead, in
// one run so that machine drift hits every case alike: a Go buffered
// channel (one process), a Unix domain socket and shmring itself (two
// processes each). The cross-process cases re-execute the harness binary as
// their producer and consumer (see cmd/shmbench).
package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/shmring/shmring/internal/demo"
	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/ipc"
	"golang.org/x/sys/unix"
)

// Case is one thing the harness measures.
type Case struct {
	Name string
	// Procs is how many processes the case runs in.
	Procs int
	run   func(exe string, n, size uint64) (time.Duration, error)
	// slow marks a case with a system call per message: it moves a tenth
	// of the messages (at least 10,000), which measures its rate as well
	// and keeps the default run under two minutes.
	slow bool
}

// cpuUsed is the user+system time of the processes of the last case run by
// group (or of this process, for in-process cases): CPU per message.
var cpuUsed time.Duration

// Cases returns the cases of the 64-byte one-message-per-operation
// comparison, in the order a round runs them.
func Cases() []Case {
	return []Case{
		{"shmring-spsc", 2, runShmring, false},
		{"shmring-spsc-claim", 2, shmVariant(RoleShmConsumer, RoleShmProducerClaim, ipc.Config{}), false},
		{"shmring-spsc-batch64", 2, shmVariant(RoleShmConsumer, RoleShmProducerBatch, ipc.Config{}), false},
		{"shmring-spsc-coalesce", 2, shmVariant(RoleShmConsumerCoalesce, RoleShmProducer, ipc.Config{}), false},
		{"shmring-spsc-hc", 2, shmVariant(RoleShmConsumer, RoleShmProducer, ipc.Config{HeaderCommit: true}), false},
		{"c-ring", 2, cringCase(1), false},
		{"c-ring-batch64", 2, cringCase(64), false},
		{"go-chan", 1, runChan, false},
		{"unix-stream", 2, runUnix, true},
		{"unix-seqpacket", 2, runSeqpacket, true},
		{"pipe", 2, runPipe, true},
		{"pipe-batch64", 2, runPipeBatch, false},
		{"shmring-mpsc-1p", 2, mpscCase(1, RoleMPSCProducer), false},
		{"shmring-mpsc-2p", 3, mpscCase(2, RoleMPSCProducer), false},
		{"shmring-mpsc-4p", 5, mpscCase(4, RoleMPSCProducer), false},
		{"shmring-mpsc-4p-claim", 5, mpscCase(4, RoleMPSCProducerClaim), false},
		{"shmring-mpsc-4p-batch64", 5, mpscCase(4, RoleMPSCProducerBatch), false},
		{"go-chan-2g", 1, chanCase(2), false},
		{"go-chan-4g", 1, chanCase(4), false},
		{"shmring-1core", 1, oneCoreCase(1), false},
		{"c-1core", 1, cloopCase(1), false},
		{"shmring-1core-batch64", 1, oneCoreCase(64), false},
		{"c-1core-batch64", 1, cloopCase(64), false},
		{"shmring-1core-iter64", 1, oneCoreIterCase(64), false},
	}
}

// OneCore reports whether the case named is a one-core loop (its rate is
// the inverse of its cost per message, in its thread's CPU time).
func OneCore(name string) bool {
	switch name {
	case "shmring-1core", "c-1core", "shmring-1core-batch64", "c-1core-batch64", "shmring-1core-iter64":
		return true
	}
	return false
}

// CostRatios are the one-core comparisons: the case's cost per message
// over its peer's (the inverse of their rates' ratio), in every round,
// whatever the machine's state (one core's cache: no line crosses cores).
func CostRatios() []Ratio {
	return []Ratio{
		{"shmring-1core", "c-1core"},
		{"shmring-1core-batch64", "c-1core-batch64"},
		{"shmring-1core-iter64", "c-1core-batch64"},
	}
}

// SweepCases are the cases of the message-size sweep.
func SweepCases() []Case {
	return []Case{
		{"shmring-spsc", 2, runShmring, false},
		{"unix-stream", 2, runUnix, true},
		{"pipe", 2, runPipe, true},
	}
}

// Ratio names two cases whose rates are compared round by round.
type Ratio struct{ Case, Peer string }

// Ratios are the comparisons the harness reports.
func Ratios() []Ratio {
	return []Ratio{
		{"shmring-spsc", "c-ring"},
		{"shmring-spsc-hc", "c-ring"},
		{"shmring-spsc-hc", "shmring-spsc"},
		{"shmring-spsc-claim", "c-ring"},
		{"shmring-spsc-batch64", "c-ring-batch64"},
		{"shmring-spsc-batch64", "pipe-batch64"},
		{"shmring-spsc", "go-chan"},
		{"shmring-spsc-coalesce", "go-chan"},
		{"shmring-spsc-coalesce", "c-ring"},
		{"shmring-spsc", "unix-stream"},
		{"shmring-spsc", "unix-seqpacket"},
		{"shmring-spsc", "pipe"},
		{"shmring-mpsc-1p", "go-chan"},
		{"shmring-mpsc-2p", "go-chan-2g"},
		{"shmring-mpsc-4p", "go-chan-4g"},
		{"shmring-mpsc-4p-claim", "go-chan-4g"},
		{"shmring-mpsc-4p-batch64", "go-chan-4g"},
		{"shmring-mpsc-4p-batch64", "shmring-mpsc-4p"},
	}
}

// Run measures c moving n messages of size bytes and returns messages/s.
func (c Case) Run(exe string, n, size uint64) (float64, error) {
	r, err := c.RunCPU(exe, n, size)
	return r.Rate, err
}

// Result is a throughput measurement.
type Result struct {
	Rate      float64       // messages per second
	CPUPerMsg time.Duration // user+system time of every process involved, per message (0 if unknown)
}

// RunCPU measures c moving n messages of size bytes: rate and CPU.
func (c Case) RunCPU(exe string, n, size uint64) (Result, error) {
	cpuUsed = 0
	if c.slow {
		n = max(n/10, min(n, 10_000))
	}
	self := cpuTime()
	d, err := c.run(exe, n, size)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", c.Name, err)
	}
	if c.Procs == 1 && cpuUsed == 0 { // the one-core cases count their thread's own
		cpuUsed = cpuTime() - self
	}
	return Result{Rate: float64(n) / d.Seconds(), CPUPerMsg: cpuUsed / time.Duration(max(n, 1))}, nil
}

// runChan moves n messages through a buffered channel between two
// goroutines; each message is copied in and out, as with a ring.
func runChan(exe string, n, size uint64) (time.Duration, error) { return chanCase(1)(exe, n, size) }

// chanCase returns the channel peer of an MPSC case: senders goroutines
// share n messages and send them into one buffered channel.
func chanCase(senders int) func(string, uint64, uint64) (time.Duration, error) {
	return func(_ string, n, size uint64) (time.Duration, error) {
		if size != 64 {
			return 0, fmt.Errorf("the channel case is built for 64-byte messages")
		}
		ch := make(chan [64]byte, 16384)
		done := make(chan uint64)
		go func() {
			var count uint64
			for range ch {
				count++
			}
			done <- count
		}()
		per := n / uint64(senders)
		start := time.Now()
		var wg sync.WaitGroup
		for g := 0; g < senders; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				var m [64]byte
				for i := uint64(0); i < per; i++ {
					binary.LittleEndian.PutUint64(m[:], uint64(g)<<48|i)
					ch <- m
				}
			}(g)
		}
		wg.Wait()
		close(ch)
		count := <-done
		d := time.Since(start)
		if count != per*uint64(senders) {
			return 0, fmt.Errorf("channel lost messages")
		}
		return d, nil
	}
}

// Child roles: the harness binary runs these when re-executed. The
// shmring roles live in internal/demo, shared with ringctl demo.
const (
	RoleShmProducer = demo.RoleShmProducer
	RoleShmConsumer = demo.RoleShmConsumer
	// RoleShmConsumerCoalesce reads with ConsumerConfig.Coalesce
	// CoalesceDelay.
	RoleShmConsumerCoalesce = demo.RoleShmConsumerCoalesce
	RoleUnixProducer        = "unix-producer"
	RoleUnixConsumer        = "unix-consumer"
	RoleShmProducerClaim    = demo.RoleShmProducerClaim
	RoleShmProducerBatch    = demo.RoleShmProducerBatch
	RoleSeqProducer         = "seqpacket-producer"
	RoleSeqConsumer         = "seqpacket-consumer"
	RolePipeProducer        = "pipe-producer"
	RolePipeBatch           = "pipe-producer-batch"
	RolePipeConsumer        = "pipe-consumer"
	RoleMPSCProducer        = demo.RoleMPSCProducer
	RoleMPSCProducerClaim   = demo.RoleMPSCProducerClaim
	RoleMPSCProducerBatch   = demo.RoleMPSCProducerBatch
	RoleMPSCConsumer        = demo.RoleMPSCConsumer
)

// ChildArg is the first argument that marks a re-executed child.
const ChildArg = demo.ChildArg

// CoalesceDelay is the hold of the shmring-spsc-coalesce case's consumer.
const CoalesceDelay = demo.CoalesceDelay

// pair runs one producer child and one consumer child; see group.
func pair(exe, consRole, prodRole string, args ...string) (time.Duration, error) {
	return group(exe, consRole, prodRole, 1, args...)
}

// group is demo.Group, adding the children's CPU to cpuUsed.
func group(exe, consRole, prodRole string, producers int, args ...string) (time.Duration, error) {
	d, cpu, err := demo.Group(exe, consRole, prodRole, producers, args...)
	cpuUsed += cpu
	return d, err
}

// mpscCase returns the MPSC case with producers producer processes
// sharing n messages, each writing as prodRole says.
func mpscCase(producers int, prodRole string) func(string, uint64, uint64) (time.Duration, error) {
	return func(exe string, n, size uint64) (time.Duration, error) {
		dir, err := shmDir()
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "ring")
		r, err := ipc.Create(path, ipc.Config{Kind: ipc.MPSC, Producers: producers, Capacity: 1 << 20, MaxMessage: max(size, 64)})
		if err != nil {
			return 0, err
		}
		defer r.Close()
		per := n / uint64(producers)
		return group(exe, RoleMPSCConsumer, prodRole, producers, path, strconv.FormatUint(per, 10), strconv.FormatUint(size, 10), strconv.Itoa(producers))
	}
}

// shmDir makes a private directory in /dev/shm (or the temporary
// directory where there is none) for a case's ring.
func shmDir() (string, error) {
	if dir, err := os.MkdirTemp("/dev/shm", "shmbench-"); err == nil {
		return dir, nil
	}
	return os.MkdirTemp("", "shmbench-")
}

// shmVariant is the SPSC case with another producer (zero-copy claims, or
// batches of 64 messages published with one position store), another
// consumer (coalescing), or a ring created with more of cfg's options
// (header commit); the capacity and maximum message are the SPSC case's.
func shmVariant(consumerRole, producerRole string, cfg ipc.Config) func(string, uint64, uint64) (time.Duration, error) {
	return func(exe string, n, size uint64) (time.Duration, error) {
		dir, err := shmDir()
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "ring")
		cfg := cfg
		cfg.Capacity, cfg.MaxMessage = 1<<20, max(size, 64)
		r, err := ipc.Create(path, cfg)
		if err != nil {
			return 0, err
		}
		defer r.Close()
		return pair(exe, consumerRole, producerRole, path, strconv.FormatUint(n, 10), strconv.FormatUint(size, 10))
	}
}

func runShmring(exe string, n, size uint64) (time.Duration, error) {
	dir, err := shmDir()
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ring")
	r, err := ipc.Create(path, ipc.Config{Capacity: 1 << 20, MaxMessage: max(size, 64)})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return ShmringPair(exe, path, n, size)
}

// ShmringPair runs a producer process and a consumer process (exe, which
// must hand ChildArg invocations to RunChild) through the existing ring at
// path: n messages of size bytes, each carrying its sequence number, which
// the consumer checks. It returns the time from the producer's first write
// to the consumer's last read, and adds both processes' CPU time to the
// case's (demo.Pair, which ringctl demo uses, drops it).
func ShmringPair(exe, path string, n, size uint64) (time.Duration, error) {
	if size < 8 {
		return 0, fmt.Errorf("messages must be at least 8 bytes (the sequence number)")
	}
	return pair(exe, RoleShmConsumer, RoleShmProducer, path, strconv.FormatUint(n, 10), strconv.FormatUint(size, 10))
}

// runSeqpacket is runUnix over a SOCK_SEQPACKET socket: message boundaries
// kept, one message per read.
func runSeqpacket(exe string, n, size uint64) (time.Duration, error) {
	return throughFile(exe, RoleSeqConsumer, RoleSeqProducer, "sock", n, size)
}

// runPipe moves the messages through a named pipe, one write per message.
func runPipe(exe string, n, size uint64) (time.Duration, error) {
	return throughFile(exe, RolePipeConsumer, RolePipeProducer, "fifo", n, size)
}

// runPipeBatch is runPipe with 64 messages per write: the pipe's answer to
// shmring's WriteBatch.
func runPipeBatch(exe string, n, size uint64) (time.Duration, error) {
	return throughFile(exe, RolePipeConsumer, RolePipeBatch, "fifo", n, size)
}

func runUnix(exe string, n, size uint64) (time.Duration, error) {
	return throughFile(exe, RoleUnixConsumer, RoleUnixProducer, "sock", n, size)
}

// throughFile runs a producer and a consumer child that meet at a file
// (a socket or a named pipe) in a private temporary directory.
func throughFile(exe, consRole, prodRole, file string, n, size uint64) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "shmbench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	return pair(exe, consRole, prodRole, filepath.Join(dir, file), strconv.FormatUint(n, 10), strconv.FormatUint(size, 10))
}

// RunChild runs a re-executed child role with its arguments: PATH N SIZE,
// then, for the MPSC roles, the producer count (consumer) or PRODUCERS ID
// (producer). The shmring roles are internal/demo's.
func RunChild(role string, args []string) error {
	proc.DieWithParent() // never outlive a harness that was interrupted
	if ok, err := runLatencyChild(role, args); ok {
		return err
	}
	if ok, err := demo.RunChild(role, args); ok {
		return err
	}
	path, n, size, _, err := demo.ParseArgs(role, args)
	if err != nil {
		return err
	}
	switch role {
	case RoleUnixProducer:
		return unixProducer("unix", path, n, size)
	case RoleUnixConsumer:
		return unixConsumer("unix", path, n, size)
	case RoleSeqProducer:
		return unixProducer("unixpacket", path, n, size)
	case RoleSeqConsumer:
		return unixConsumer("unixpacket", path, n, size)
	case RolePipeProducer:
		return pipeProducer(path, n, size, 1)
	case RolePipeBatch:
		return pipeProducer(path, n, size, 64)
	case RolePipeConsumer:
		return pipeConsumer(path, n, size)
	}
	return fmt.Errorf("unknown child role %q or wrong arguments %q", role, args)
}

func unixProducer(network, path string, n, size uint64) error {
	conn, err := net.Dial(network, path)
	if err != nil {
		return err
	}
	defer conn.Close()
	return feed(conn, n, size)
}

func unixConsumer(network, path string, n, size uint64) error {
	ln, err := net.Listen(network, path)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println("ready")
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	return drain(conn, n*size)
}

func pipeProducer(path string, n, size uint64, per int) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return feedBatch(f, n, size, per)
}

func pipeConsumer(path string, n, size uint64) error {
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return err
	}
	fmt.Println("ready")
	f, err := os.Open(path) // blocks until the producer opens it
	if err != nil {
		return err
	}
	defer f.Close()
	return drain(f, n*size)
}

// feed writes n messages of size bytes to w, one write each, and reports
// the producer's start, end and CPU time.
func feed(w io.Writer, n, size uint64) error { return feedBatch(w, n, size, 1) }

// feedBatch is feed writing per messages with each write.
func feedBatch(w io.Writer, n, size uint64, per int) error {
	buf := make([]byte, uint64(per)*size)
	start := time.Now()
	for i := uint64(0); i < n; {
		k := min(uint64(per), n-i)
		for j := uint64(0); j < k; j++ {
			binary.LittleEndian.PutUint64(buf[j*size:], i+j)
		}
		if _, err := w.Write(buf[:k*size]); err != nil {
			return err
		}
		i += k
	}
	fmt.Println(start.UnixNano(), time.Now().UnixNano(), int64(cpuTime()))
	return nil
}

// drain reads total bytes from r in large reads and reports the consumer's
// end and CPU time.
func drain(r io.Reader, total uint64) error {
	buf := make([]byte, 64<<10)
	var got uint64
	for got < total {
		k, err := r.Read(buf)
		got += uint64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if got != total {
		return fmt.Errorf("received %d bytes, want %d", got, total)
	}
	fmt.Println(time.Now().UnixNano(), int64(cpuTime()))
	return nil
}
