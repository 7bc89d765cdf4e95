// Package bench measures shmring against what users would use instead, in
// one run so that machine drift hits every case alike: a Go buffered
// channel (one process), a Unix domain socket and shmring itself (two
// processes each). The cross-process cases re-execute the harness binary as
// their producer and consumer (see cmd/shmbench).
package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shmring/shmring/ipc"
)

// Case is one thing the harness measures.
type Case struct {
	Name string
	// Procs is how many processes the case runs in.
	Procs int
	run   func(exe string, n, size uint64) (time.Duration, error)
}

// Cases returns the cases of the 64-byte one-message-per-operation
// comparison, in the order a round runs them.
func Cases() []Case {
	return []Case{
		{"shmring-spsc", 2, runShmring},
		{"go-chan", 1, runChan},
		{"unix-stream", 2, runUnix},
	}
}

// Run measures c moving n messages of size bytes and returns messages/s.
func (c Case) Run(exe string, n, size uint64) (float64, error) {
	d, err := c.run(exe, n, size)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", c.Name, err)
	}
	return float64(n) / d.Seconds(), nil
}

// runChan moves n messages through a buffered channel between two
// goroutines; each message is copied in and out, as with a ring.
func runChan(_ string, n, size uint64) (time.Duration, error) {
	if size != 64 {
		return 0, fmt.Errorf("the channel case is built for 64-byte messages")
	}
	ch := make(chan [64]byte, 16384)
	done := make(chan uint64)
	go func() {
		var sum uint64
		for m := range ch {
			sum += binary.LittleEndian.Uint64(m[:])
		}
		done <- sum
	}()
	start := time.Now()
	var m [64]byte
	for i := uint64(0); i < n; i++ {
		binary.LittleEndian.PutUint64(m[:], i)
		ch <- m
	}
	close(ch)
	sum := <-done
	d := time.Since(start)
	if sum != n*(n-1)/2 {
		return 0, fmt.Errorf("channel lost messages")
	}
	return d, nil
}

// Child roles: the harness binary runs these when re-executed.
const (
	RoleShmProducer  = "shm-producer"
	RoleShmConsumer  = "shm-consumer"
	RoleUnixProducer = "unix-producer"
	RoleUnixConsumer = "unix-consumer"
)

// ChildArg is the first argument that marks a re-executed child.
const ChildArg = "-bench-child"

// pair starts a consumer child, waits for its "ready", starts a producer
// child, and returns the time from the producer's first write to the
// consumer's last read (wall clock, reported by each).
func pair(exe, consRole, prodRole string, args ...string) (time.Duration, error) {
	cons := exec.Command(exe, append([]string{ChildArg, consRole}, args...)...)
	cons.Stderr = os.Stderr
	cout, err := cons.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cons.Start(); err != nil {
		return 0, err
	}
	defer cons.Process.Kill()
	cs := bufio.NewScanner(cout)
	if !cs.Scan() || cs.Text() != "ready" {
		return 0, fmt.Errorf("consumer did not start: %v", cons.Wait())
	}
	prod := exec.Command(exe, append([]string{ChildArg, prodRole}, args...)...)
	prod.Stderr = os.Stderr
	pout, err := prod.Output()
	if err != nil {
		return 0, fmt.Errorf("producer: %w", err)
	}
	if !cs.Scan() {
		return 0, fmt.Errorf("consumer: %v", cons.Wait())
	}
	if err := cons.Wait(); err != nil {
		return 0, fmt.Errorf("consumer: %w", err)
	}
	var pStart, pEnd, cEnd int64
	if _, err := fmt.Sscan(string(pout), &pStart, &pEnd); err != nil {
		return 0, fmt.Errorf("producer said %q", pout)
	}
	if _, err := fmt.Sscan(cs.Text(), &cEnd); err != nil {
		return 0, fmt.Errorf("consumer said %q", cs.Text())
	}
	return time.Duration(cEnd - pStart), nil
}

func runShmring(exe string, n, size uint64) (time.Duration, error) {
	dir, err := os.MkdirTemp("/dev/shm", "shmbench-")
	if err != nil {
		dir, err = os.MkdirTemp("", "shmbench-")
		if err != nil {
			return 0, err
		}
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ring")
	r, err := ipc.Create(path, ipc.WithCapacity(1<<20), ipc.WithMaxMessage(max(size, 64)))
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
// to the consumer's last read.
func ShmringPair(exe, path string, n, size uint64) (time.Duration, error) {
	if size < 8 {
		return 0, fmt.Errorf("messages must be at least 8 bytes (the sequence number)")
	}
	return pair(exe, RoleShmConsumer, RoleShmProducer, path, strconv.FormatUint(n, 10), strconv.FormatUint(size, 10))
}

func runUnix(exe string, n, size uint64) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "shmbench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	return pair(exe, RoleUnixConsumer, RoleUnixProducer, filepath.Join(dir, "sock"), strconv.FormatUint(n, 10), strconv.FormatUint(size, 10))
}

// RunChild runs a re-executed child role with its arguments: PATH N SIZE.
func RunChild(role string, args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("child %s: want PATH N SIZE", role)
	}
	path := args[0]
	n, err1 := strconv.ParseUint(args[1], 10, 64)
	size, err2 := strconv.ParseUint(args[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil || size < 8 {
		return fmt.Errorf("child %s: bad N or SIZE", role)
	}
	switch role {
	case RoleShmProducer:
		return shmProducer(path, n, size)
	case RoleShmConsumer:
		return shmConsumer(path, n, size)
	case RoleUnixProducer:
		return unixProducer(path, n, size)
	case RoleUnixConsumer:
		return unixConsumer(path, n, size)
	}
	return fmt.Errorf("unknown child role %q", role)
}

func shmProducer(path string, n, size uint64) error {
	r, err := ipc.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Producer(ipc.WithPolicy(ipc.Spin))
	if err != nil {
		return err
	}
	defer p.Close()
	msg := make([]byte, size)
	start := time.Now()
	for i := uint64(0); i < n; i++ {
		binary.LittleEndian.PutUint64(msg, i)
		if err := p.Write(msg); err != nil {
			return err
		}
	}
	fmt.Println(start.UnixNano(), time.Now().UnixNano())
	return nil
}

func shmConsumer(path string, n, size uint64) error {
	r, err := ipc.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer(ipc.WithWait(ipc.Spin))
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
		if _, err := c.ReadBatch(ctx, 256, fn); err != nil {
			return err
		}
	}
	fmt.Println(time.Now().UnixNano())
	return bad
}

func unixProducer(path string, n, size uint64) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	defer conn.Close()
	msg := make([]byte, size)
	start := time.Now()
	for i := uint64(0); i < n; i++ {
		binary.LittleEndian.PutUint64(msg, i)
		if _, err := conn.Write(msg); err != nil {
			return err
		}
	}
	fmt.Println(start.UnixNano(), time.Now().UnixNano())
	return nil
}

func unixConsumer(path string, n, size uint64) error {
	ln, err := net.Listen("unix", path)
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
	buf := make([]byte, 64<<10)
	var got uint64
	for got < n*size {
		k, err := conn.Read(buf)
		got += uint64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if got != n*size {
		return fmt.Errorf("received %d bytes, want %d", got, n*size)
	}
	fmt.Println(time.Now().UnixNano())
	return nil
}
