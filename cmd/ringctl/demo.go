package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/shmring/shmring/ipc"
)

const (
	demoProducerVerb = "__demo-producer"
	demoConsumerVerb = "__demo-consumer"
)

// runDemo creates a ring, runs a producer and a consumer as two separate
// processes (this executable, re-executed), moves the messages, prints the
// throughput and the ring's counters, and removes the ring.
func runDemo(sio stdio, args []string) error {
	fs := newFlags(sio, "demo")
	count := fs.Uint64("messages", 5_000_000, "number of messages to move")
	msgSize := sizeFlag{v: 64}
	fs.Var(&msgSize, "msg-size", "message size, at least 8 bytes (default 64 B)")
	capacity := sizeFlag{v: 1 << 20}
	fs.Var(&capacity, "size", "ring capacity (default 1 MiB)")
	dir := fs.String("dir", "", "directory for the ring (default $SHMRING_DIR or /dev/shm)")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if msgSize.v < 8 {
		return usagef("--msg-size must be at least 8 bytes (the sequence number)")
	}
	if *count == 0 {
		return usagef("--messages must be at least 1")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this executable to start the demo processes: %w", err)
	}
	opts := []ipc.Option{ipc.WithCapacity(capacity.v), ipc.WithMaxMessage(min(capacity.v/8, max(msgSize.v, 8)))}
	if *dir != "" {
		opts = append(opts, ipc.WithDir(*dir))
	}
	name := fmt.Sprintf("ringctl-demo-%d", os.Getpid())
	r, err := ipc.Create(name, opts...)
	if err != nil {
		return err
	}
	var children []*exec.Cmd
	cleanup := func() {
		for _, c := range children {
			_ = c.Process.Kill()
		}
		_ = r.Close()
		_ = os.Remove(r.Path())
	}
	defer cleanup()
	// On Ctrl-C, stop the children and remove the ring before exiting.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			cleanup()
			fmt.Fprintln(sio.err, "ringctl demo: interrupted; ring removed")
			os.Exit(130)
		}
	}()
	fmt.Fprintf(sio.out, "shmring demo: %d messages of %s through a %s %s ring at %s\n",
		*count, formatSize(msgSize.v), formatSize(r.Capacity()), r.Kind(), r.Path())

	childArgs := []string{r.Path(), strconv.FormatUint(*count, 10), strconv.FormatUint(msgSize.v, 10)}
	consumer, cout, err := startDemoChild(exe, demoConsumerVerb, childArgs)
	if err != nil {
		return err
	}
	children = append(children, consumer)
	if !cout.Scan() || cout.Text() != "ready" {
		return fmt.Errorf("consumer process did not start: %v", consumer.Wait())
	}
	producer, pout, err := startDemoChild(exe, demoProducerVerb, childArgs)
	if err != nil {
		return err
	}
	children = append(children, producer)
	fmt.Fprintf(sio.out, "  producer pid %d, consumer pid %d, both spinning when they must wait\n", producer.Process.Pid, consumer.Process.Pid)

	var pStart, pEnd, cStart, cEnd, verified, bad int64
	if !pout.Scan() {
		return fmt.Errorf("producer process failed: %v", producer.Wait())
	}
	if _, err := fmt.Sscanf(pout.Text(), "producer %d %d", &pStart, &pEnd); err != nil {
		return fmt.Errorf("producer said %q: %v", pout.Text(), err)
	}
	if !cout.Scan() {
		return fmt.Errorf("consumer process failed: %v", consumer.Wait())
	}
	if _, err := fmt.Sscanf(cout.Text(), "consumer %d %d %d %d", &cStart, &cEnd, &verified, &bad); err != nil {
		return fmt.Errorf("consumer said %q: %v", cout.Text(), err)
	}
	if err := errors.Join(producer.Wait(), consumer.Wait()); err != nil {
		return fmt.Errorf("demo processes: %w", err)
	}
	st, err := r.Stats()
	if err != nil {
		return err
	}
	elapsed := time.Duration(cEnd - pStart)
	secs := elapsed.Seconds()
	tw := tabwriter.NewWriter(sio.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  elapsed\t%.3f s (first write to last read)\n", secs)
	fmt.Fprintf(tw, "  throughput\t%.2f M msgs/s, %.1f MiB/s\n", float64(*count)/secs/1e6, float64(*count*msgSize.v)/secs/(1<<20))
	fmt.Fprintf(tw, "  verified\t%d messages in order, %d bad\n", verified, bad)
	fmt.Fprintln(tw, "counters (read from the segment)")
	fmt.Fprintf(tw, "  messages in / out\t%d / %d\n", st.MsgsIn, st.MsgsOut)
	fmt.Fprintf(tw, "  bytes in / out\t%s / %s\n", formatSize(st.BytesIn), formatSize(st.BytesOut))
	fmt.Fprintf(tw, "  depth now\t%s\n", formatSize(st.Depth))
	fmt.Fprintf(tw, "  high watermark\t%s of %s (%.0f%%)\n", formatSize(st.HighWater), formatSize(st.Capacity), 100*float64(st.HighWater)/float64(st.Capacity))
	fmt.Fprintf(tw, "  full events\t%d\n", st.FullEvents)
	fmt.Fprintf(tw, "  producer spins\t%d\n", st.Spins)
	fmt.Fprintf(tw, "  drops\t%d\n", st.Drops)
	_ = tw.Flush()
	fmt.Fprintf(sio.out, "removed %s\n", r.Path())
	if bad != 0 || uint64(verified) != *count {
		return fmt.Errorf("%d of %d messages failed verification", uint64(bad)+*count-uint64(verified), *count)
	}
	return nil
}

func startDemoChild(exe, verb string, args []string) (*exec.Cmd, *bufio.Scanner, error) {
	cmd := exec.Command(exe, append([]string{verb}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", verb, err)
	}
	return cmd, bufio.NewScanner(out), nil
}

func demoChildArgs(args []string) (path string, count, size uint64, err error) {
	if len(args) != 3 {
		return "", 0, 0, usagef("want PATH N SIZE")
	}
	count, err1 := strconv.ParseUint(args[1], 10, 64)
	size, err2 := strconv.ParseUint(args[2], 10, 64)
	return args[0], count, size, errors.Join(err1, err2)
}

func runDemoProducer(sio stdio, args []string) error {
	path, count, size, err := demoChildArgs(args)
	if err != nil {
		return err
	}
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
	msg := []byte(strings.Repeat("m", int(size)))
	start := time.Now()
	for seq := uint64(0); seq < count; seq++ {
		binary.LittleEndian.PutUint64(msg, seq)
		if err := p.Write(msg); err != nil {
			return err
		}
	}
	end := time.Now()
	fmt.Fprintf(sio.out, "producer %d %d\n", start.UnixNano(), end.UnixNano())
	return nil
}

func runDemoConsumer(sio stdio, args []string) error {
	path, count, size, err := demoChildArgs(args)
	if err != nil {
		return err
	}
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
	fmt.Fprintln(sio.out, "ready")
	var seq, bad uint64
	var start time.Time
	check := func(m []byte) {
		if uint64(len(m)) != size || binary.LittleEndian.Uint64(m) != seq {
			bad++
		}
		seq++
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for seq < count {
		if _, err := c.ReadBatch(ctx, int(min(256, count-seq)), check); err != nil {
			return fmt.Errorf("after %d messages: %w", seq, err)
		}
		if start.IsZero() {
			start = time.Now()
		}
	}
	fmt.Fprintf(sio.out, "consumer %d %d %d %d\n", start.UnixNano(), time.Now().UnixNano(), seq, bad)
	return nil
}
