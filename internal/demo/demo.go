// Package demo holds the shmring child processes that ringctl demo and the
// shmbench harness (package bench) run: a consumer and one or more
// producers, each a re-execution of the calling binary, moving numbered
// messages through a ring and reporting their times and CPU.
//
// It is internal and separate from bench so that ringctl links neither the
// benchmark harness nor its embedded C source. [Bridge] runs the same
// children through two rings bridged by NATS JetStream (ringctl demo
// --bridge). A binary that calls [Pair], [Group] or [Bridge] must, before anything else in main, hand an invocation whose
// first argument is [ChildArg] to [RunChild] (bench.RunChild, which
// delegates the shmring roles here, does for shmbench).
//
// The protocol between parent and children: the consumer prints "ready"
// once attached, then, after its last read, "END CPU" (nanoseconds since
// the epoch, and its user+system time); each producer prints "START END
// CPU" when done. Every message starts with its sequence number
// (little-endian uint64; MPSC producers put their index in the top 16
// bits), which the consumer checks, so a lost, duplicated or reordered
// message fails the run.
package demo

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/ipc"
	"golang.org/x/sys/unix"
)

// ChildArg is the first argument that marks a re-executed child.
const ChildArg = "-bench-child"

// Child roles: a binary re-executed with ChildArg ROLE runs one of these.
const (
	RoleShmProducer = "shm-producer"
	RoleShmConsumer = "shm-consumer"
	// RoleShmConsumerCoalesce reads with ConsumerConfig.Coalesce
	// CoalesceDelay.
	RoleShmConsumerCoalesce = "shm-consumer-coalesce"
	RoleShmProducerClaim    = "shm-producer-claim"
	RoleShmProducerBatch    = "shm-producer-batch"
	RoleMPSCProducer        = "mpsc-producer"
	RoleMPSCProducerClaim   = "mpsc-producer-claim"
	RoleMPSCProducerBatch   = "mpsc-producer-batch"
	RoleMPSCConsumer        = "mpsc-consumer"
	// RoleBridgeProducer and RoleBridgeConsumer are RoleMPSCProducer and
	// RoleMPSCConsumer waiting the default way (Hybrid: spin, yield, then
	// park) with a one-minute peer timeout, for the bridge demo, whose
	// bridges need the CPUs that spinning children would take.
	RoleBridgeProducer = "bridge-producer"
	RoleBridgeConsumer = "bridge-consumer"
)

// spinWait is how every child waits: it busy-waits (the demo and the
// benchmarks measure the transport, not the scheduler).
var spinWait = ipc.Wait{Strategy: ipc.Spin}

// bridgeWait is how the bridge demo's children wait.
var bridgeWait = ipc.Wait{PeerTimeout: time.Minute}

// waitOf returns how a child of role waits.
func waitOf(role string) ipc.Wait {
	if role == RoleBridgeProducer || role == RoleBridgeConsumer {
		return bridgeWait
	}
	return spinWait
}

// CPUTime is this process's user plus system time so far.
func CPUTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Pair runs a producer process and a consumer process (exe, which must
// hand ChildArg invocations to RunChild) through the existing SPSC ring at
// path: n messages of size bytes, each carrying its sequence number, which
// the consumer checks. Both spin when they must wait. It returns the time
// from the producer's first write to the consumer's last read.
func Pair(exe, path string, n, size uint64) (time.Duration, error) {
	if size < 8 {
		return 0, fmt.Errorf("messages must be at least 8 bytes (the sequence number)")
	}
	d, _, err := Group(exe, RoleShmConsumer, RoleShmProducer, 1, path, strconv.FormatUint(n, 10), strconv.FormatUint(size, 10))
	return d, err
}

// Group starts a consumer child, waits for its "ready", starts producers
// producer children (each given its index as a last argument), and returns
// the time from the first producer's first write to the consumer's last
// read (wall clock, reported by each) and the CPU time (user+system) the
// children reported.
func Group(exe, consRole, prodRole string, producers int, args ...string) (elapsed, cpuUsed time.Duration, err error) {
	return group(exe, consRole, prodRole, producers, args, args)
}

// group is Group with the consumer's and the producers' arguments apart
// (the bridge demo's read one ring and write another).
func group(exe, consRole, prodRole string, producers int, consArgs, args []string) (elapsed, cpuUsed time.Duration, err error) {
	cons := exec.Command(exe, append([]string{ChildArg, consRole}, consArgs...)...)
	cons.Stderr = os.Stderr
	cout, err := cons.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	if err := cons.Start(); err != nil {
		return 0, 0, err
	}
	defer cons.Process.Kill()
	cs := bufio.NewScanner(cout)
	if !cs.Scan() || cs.Text() != "ready" {
		return 0, 0, fmt.Errorf("consumer did not start: %v", cons.Wait())
	}
	type result struct {
		out []byte
		err error
	}
	results := make(chan result, producers)
	for i := 0; i < producers; i++ {
		a := args
		if producers > 1 || strings.HasPrefix(prodRole, RoleMPSCProducer) {
			a = append(append([]string{}, args...), strconv.Itoa(i))
		}
		prod := exec.Command(exe, append([]string{ChildArg, prodRole}, a...)...)
		prod.Stderr = os.Stderr
		go func() {
			out, err := prod.Output()
			results <- result{out, err}
		}()
	}
	pStart := int64(math.MaxInt64)
	for i := 0; i < producers; i++ {
		res := <-results
		if res.err != nil {
			return 0, 0, fmt.Errorf("producer: %w", res.err)
		}
		var start, end, cpu int64
		if _, err := fmt.Sscan(string(res.out), &start, &end, &cpu); err != nil {
			return 0, 0, fmt.Errorf("producer said %q", res.out)
		}
		pStart = min(pStart, start)
		cpuUsed += time.Duration(cpu)
	}
	if !cs.Scan() {
		return 0, 0, fmt.Errorf("consumer: %v", cons.Wait())
	}
	if err := cons.Wait(); err != nil {
		return 0, 0, fmt.Errorf("consumer: %w", err)
	}
	var cEnd, cpu int64
	if _, err := fmt.Sscan(cs.Text(), &cEnd, &cpu); err != nil {
		return 0, 0, fmt.Errorf("consumer said %q", cs.Text())
	}
	cpuUsed += time.Duration(cpu)
	return time.Duration(cEnd - pStart), cpuUsed, nil
}

// RunChild runs a re-executed shmring child role with its arguments: PATH
// N SIZE, then, for the MPSC roles, the producer count (consumer) or
// PRODUCERS ID (producer). It returns false if role is none of the roles
// above (the caller may have others).
func RunChild(role string, args []string) (bool, error) {
	switch role {
	case RoleShmProducer, RoleShmProducerClaim, RoleShmProducerBatch, RoleShmConsumer, RoleShmConsumerCoalesce,
		RoleMPSCProducer, RoleMPSCProducerClaim, RoleMPSCProducerBatch, RoleMPSCConsumer, RoleBridgeProducer, RoleBridgeConsumer:
	default:
		return false, nil
	}
	proc.DieWithParent() // never outlive a parent that was interrupted
	path, n, size, extra, err := ParseArgs(role, args)
	if err != nil {
		return true, err
	}
	switch {
	case role == RoleShmProducer, role == RoleShmProducerClaim, role == RoleShmProducerBatch:
		return true, shmProducer(role, path, n, size)
	case role == RoleShmConsumer:
		return true, shmConsumer(path, n, size, 0)
	case role == RoleShmConsumerCoalesce:
		return true, shmConsumer(path, n, size, CoalesceDelay)
	case role != RoleMPSCConsumer && role != RoleBridgeConsumer && len(extra) == 2:
		return true, mpscProducer(role, path, n, size, extra[1])
	case (role == RoleMPSCConsumer || role == RoleBridgeConsumer) && len(extra) == 1:
		return true, mpscConsumer(role, path, n, size, extra[0])
	}
	return true, fmt.Errorf("child %s: wrong arguments %q", role, args)
}

// ParseArgs parses a child's arguments: PATH N SIZE (at least 8), then
// integers.
func ParseArgs(role string, args []string) (path string, n, size uint64, extra []int, err error) {
	if len(args) < 3 {
		return "", 0, 0, nil, fmt.Errorf("child %s: want PATH N SIZE", role)
	}
	path = args[0]
	n, err1 := strconv.ParseUint(args[1], 10, 64)
	size, err2 := strconv.ParseUint(args[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil || size < 8 {
		return "", 0, 0, nil, fmt.Errorf("child %s: bad N or SIZE", role)
	}
	extra = make([]int, len(args)-3)
	for i, a := range args[3:] {
		v, err := strconv.Atoi(a)
		if err != nil {
			return "", 0, 0, nil, fmt.Errorf("child %s: bad argument %q", role, a)
		}
		extra[i] = v
	}
	return path, n, size, extra, nil
}

func mpscProducer(role, path string, n, size uint64, id int) error {
	r, err := ipc.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Producer(&ipc.ProducerConfig{ID: id + 1, Wait: waitOf(role)}) // ID k takes slot k-1
	if err != nil {
		return err
	}
	defer p.Close()
	return produce(p, role, n, size, uint64(id)<<48)
}

// mpscConsumer reads n messages from each of producers producers and
// checks that each producer's arrive in order.
func mpscConsumer(role, path string, n, size uint64, producers int) error {
	r, err := ipc.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: waitOf(role)})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("ready")
	next := make([]uint64, producers)
	var got uint64
	var bad error
	fn := func(m []byte) {
		v := binary.LittleEndian.Uint64(m)
		id, seq := v>>48, v&(1<<48-1)
		if id >= uint64(producers) || next[id] != seq {
			if bad == nil {
				bad = fmt.Errorf("message %d: producer %d seq %d out of order", got, id, seq)
			}
			return
		}
		next[id]++
		got++
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	total := n * uint64(producers)
	for got < total && bad == nil {
		if _, err := c.Read(ctx, 256, fn); err != nil {
			return err
		}
	}
	fmt.Println(time.Now().UnixNano(), int64(CPUTime()))
	return bad
}

func shmProducer(role, path string, n, size uint64) error {
	r, err := ipc.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Producer(&ipc.ProducerConfig{Wait: spinWait})
	if err != nil {
		return err
	}
	defer p.Close()
	return produce(p, role, n, size, 0)
}

// produce writes n messages of size bytes, each starting with tag|i (i
// from 0), one per Write, or per claim (RoleShmProducerClaim,
// RoleMPSCProducerClaim), or 64 per WriteBatch (RoleShmProducerBatch,
// RoleMPSCProducerBatch), and prints its start and end times and CPU.
func produce(p *ipc.Producer, role string, n, size, tag uint64) error {
	ctx := context.Background() // no deadline: a dead peer ends a wait (ErrPeerDead)
	msg := make([]byte, size)
	start := time.Now()
	switch role {
	case RoleShmProducerClaim, RoleMPSCProducerClaim: // zero-copy: write the message in place
		for i := uint64(0); i < n; i++ {
			b, err := p.Claim(ctx, int(size))
			if err != nil {
				return err
			}
			binary.LittleEndian.PutUint64(b, tag|i)
			if err := p.Commit(len(b)); err != nil {
				return err
			}
		}
	case RoleShmProducerBatch, RoleMPSCProducerBatch: // 64 messages: one position store (SPSC), one reservation (MPSC)
		batch := make([][]byte, 64)
		for k := range batch {
			batch[k] = make([]byte, size)
		}
		for i := uint64(0); i < n; {
			k := min(uint64(len(batch)), n-i)
			for j := uint64(0); j < k; j++ {
				binary.LittleEndian.PutUint64(batch[j], tag|(i+j))
			}
			if _, err := p.WriteBatch(ctx, batch[:k]); err != nil {
				return err
			}
			i += k
		}
	default:
		for i := uint64(0); i < n; i++ {
			binary.LittleEndian.PutUint64(msg, tag|i)
			if err := p.Write(ctx, msg); err != nil {
				return err
			}
		}
	}
	fmt.Println(start.UnixNano(), time.Now().UnixNano(), int64(CPUTime()))
	return nil
}

// CoalesceDelay is the hold of the shmring-spsc-coalesce case's consumer.
const CoalesceDelay = 5 * time.Microsecond

func shmConsumer(path string, n, size uint64, coalesce time.Duration) error {
	r, err := ipc.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: spinWait, Coalesce: coalesce})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("ready")
	var seq uint64
	var bad error
	fn := func(m []byte) {
		if binary.LittleEndian.Uint64(m) != seq && bad == nil {
			bad = fmt.Errorf("message %d out of order", seq)
		}
		seq++
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for seq < n && bad == nil {
		if _, err := c.Read(ctx, 256, fn); err != nil {
			return err
		}
	}
	fmt.Println(time.Now().UnixNano(), int64(CPUTime()))
	return bad
}

// ChildMain runs this process as a demo child and exits, if its arguments
// ask for one (ChildArg ROLE ARGS...): status 1, with the error on stderr
// after prefix, for a failed or unknown role, else 0. Otherwise it returns
// and the process goes on. ringctl's main and the tests' TestMains call it
// first, since the demo re-executes its own binary as producer and consumer.
func ChildMain(prefix string) {
	if len(os.Args) <= 2 || os.Args[1] != ChildArg {
		return
	}
	ok, err := RunChild(os.Args[2], os.Args[3:])
	if !ok {
		err = fmt.Errorf("unknown child role %q", os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, prefix+err.Error())
		os.Exit(1)
	}
	os.Exit(0)
}
