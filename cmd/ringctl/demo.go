package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/shmring/shmring/internal/demo"
	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
)

// runDemo creates a ring, runs a producer and a consumer as two separate
// processes (this executable, re-executed: see main), moves the messages,
// prints the throughput and the ring's counters, and removes the ring.
func runDemo(sio stdio, args []string) error {
	fs := newFlags(sio, "demo")
	count := fs.Uint64("messages", 5_000_000, "number of messages to move")
	msgSize := units.SizeFlag{Value: 64}
	fs.Var(&msgSize, "msg-size", "message size, at least 8 bytes (default 64 B)")
	capacity := units.SizeFlag{Value: 1 << 20}
	fs.Var(&capacity, "size", "ring capacity (default 1 MiB)")
	dir := fs.String("dir", "", "directory for the ring (default $SHMRING_DIR or /dev/shm)")
	viaBridge := fs.Bool("bridge", false, "producers → ring → bridge out → embedded NATS JetStream → bridge in → ring → consumer (default 200000 messages)")
	producers := fs.Int("producers", 2, "with --bridge: producer processes")
	window := fs.Int("window", 0, "with --bridge: the out-bridge's window (default 1024)")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !*viaBridge && (set["window"] || set["producers"]) {
		return usagef("--window and --producers go with --bridge (the demo without it has one producer and no bridge)")
	}
	if *viaBridge {
		if !set["messages"] {
			*count = 200_000
		}
		return runBridgeDemo(sio, bridgeDemoArgs{count: *count, size: msgSize.Value, capacity: capacity.Value, dir: *dir, producers: *producers, window: *window})
	}
	if msgSize.Value < 8 {
		return usagef("--msg-size must be at least 8 bytes (the sequence number)")
	}
	if *count == 0 {
		return usagef("--messages must be at least 1")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this executable to start the demo processes: %w", err)
	}
	cfg := ipc.Config{Capacity: capacity.Value, MaxMessage: min(capacity.Value/8, max(msgSize.Value, 8))}
	var opts []ipc.Option
	if *dir != "" {
		opts = append(opts, ipc.WithDir(*dir))
	}
	name := fmt.Sprintf("ringctl-demo-%d", os.Getpid())
	r, err := ipc.Create(name, cfg, opts...)
	if err != nil {
		return err
	}
	defer func() {
		_ = r.Close()
		_ = os.Remove(r.Path())
	}()
	created, err := r.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(sio.out, "shmring demo: %d messages of %s through a %s %s ring at %s\n",
		*count, units.FormatSize(msgSize.Value), units.FormatSize(created.Capacity), created.Kind, show(r.Path()))

	// On Ctrl-C, remove the ring before exiting; the children die with
	// their stdout pipe or finish on their own.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			_ = os.Remove(r.Path())
			fmt.Fprintln(sio.err, "ringctl demo: interrupted; ring removed")
			os.Exit(130)
		}
	}()
	fmt.Fprintln(sio.out, "  a producer and a consumer process, both spinning when they must wait")
	elapsed, err := demo.Pair(exe, r.Path(), *count, msgSize.Value)
	if err != nil {
		return err
	}
	st, err := r.Stats()
	if err != nil {
		return err
	}
	if st.MsgsOut != *count {
		return fmt.Errorf("the consumer read %d of %d messages", st.MsgsOut, *count)
	}
	secs := elapsed.Seconds()
	tw := tabwriter.NewWriter(sio.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  elapsed\t%.3f s (first write to last read)\n", secs)
	fmt.Fprintf(tw, "  throughput\t%.2f M msgs/s, %.1f MiB/s\n", float64(*count)/secs/1e6, float64(*count*msgSize.Value)/secs/(1<<20))
	fmt.Fprintf(tw, "  verified\t%d messages, every sequence number in order\n", st.MsgsOut)
	fmt.Fprintln(tw, "counters (read from the segment)")
	fmt.Fprintf(tw, "  messages in / out\t%d / %d\n", st.MsgsIn, st.MsgsOut)
	fmt.Fprintf(tw, "  bytes in / out\t%s / %s\n", units.FormatSize(st.BytesIn), units.FormatSize(st.BytesOut))
	fmt.Fprintf(tw, "  depth now\t%s\n", units.FormatSize(st.Depth))
	fmt.Fprintf(tw, "  high watermark\t%s of %s (%.0f%%)\n", units.FormatSize(st.HighWater), units.FormatSize(st.Capacity), 100*float64(st.HighWater)/float64(st.Capacity))
	fmt.Fprintf(tw, "  full events\t%d\n", st.FullEvents)
	fmt.Fprintf(tw, "  producer spins\t%d\n", st.Spins)
	fmt.Fprintf(tw, "  drops\t%d\n", st.Drops)
	_ = tw.Flush()
	fmt.Fprintf(sio.out, "removed %s\n", show(r.Path()))
	return nil
}
