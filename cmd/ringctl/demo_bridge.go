package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/shmring/shmring/internal/demo"
	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
)

// bridgeDemoArgs are ringctl demo --bridge's flags.
type bridgeDemoArgs struct {
	count, size, capacity uint64
	dir                   string
	producers, window     int
}

// runBridgeDemo runs producer processes → ring → out-bridge → embedded
// JetStream (its store in a temporary directory) → in-bridge → ring → a
// consumer process that checks every producer's sequence, prints the
// throughput and both bridges' counters, and removes the rings and the
// store.
func runBridgeDemo(sio stdio, a bridgeDemoArgs) error {
	if a.producers < 1 || a.producers > 64 {
		return usagef("--producers must be 1 to 64")
	}
	if a.window < 0 {
		return usagef("--window must not be negative")
	}
	per := a.count / uint64(a.producers)
	if per == 0 {
		return usagef("--messages must be at least --producers")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this executable to start the demo processes: %w", err)
	}
	// The server's store, and on Ctrl-C the rings too, removed before
	// exiting; the children die with their parent.
	store, err := os.MkdirTemp("", "shmring-bridge-demo-")
	if err != nil {
		return fmt.Errorf("make a directory for the server's store: %w", err)
	}
	defer os.RemoveAll(store)
	name := fmt.Sprintf("ringctl-bridge-demo-%d", os.Getpid())
	var opts []ipc.Option
	if a.dir != "" {
		opts = append(opts, ipc.WithDir(a.dir))
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			_ = ipc.Remove(name+"-out", opts...)
			_ = ipc.Remove(name+"-in", opts...)
			_ = os.RemoveAll(store)
			fmt.Fprintln(sio.err, "ringctl demo: interrupted; rings and store removed")
			os.Exit(130)
		}
	}()
	total := per * uint64(a.producers)
	fmt.Fprintf(sio.out, "shmring bridge demo: %d messages of %s from %d producer processes\n", total, units.FormatSize(a.size), a.producers)
	fmt.Fprintln(sio.out, "  producers → ring → bridge out → NATS JetStream (embedded, file storage) → bridge in → ring → consumer process")
	res, err := demo.Bridge(exe, demo.BridgeConfig{Producers: a.producers, Messages: per, Size: a.size, Capacity: a.capacity, Window: a.window, Dir: a.dir, Name: name, Store: store})
	if err != nil {
		return err
	}
	secs := res.Elapsed.Seconds()
	tw := tabwriter.NewWriter(sio.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  elapsed\t%.3f s (first write to last read)\n", secs)
	fmt.Fprintf(tw, "  throughput\t%.0f msgs/s, %.1f MiB/s\n", float64(total)/secs, float64(total*a.size)/secs/(1<<20))
	fmt.Fprintf(tw, "  verified\t%d messages, every producer's sequence numbers in order, none twice\n", res.Verified)
	fmt.Fprintf(tw, "  stream\t%d messages\n", res.StreamMsgs)
	fmt.Fprintln(tw, "bridge out (ring → stream)")
	o := res.Out
	fmt.Fprintf(tw, "  published / acked / duplicates\t%d / %d / %d\n", o.Published, o.Acked, o.Duplicates)
	fmt.Fprintf(tw, "  released from the ring\t%d\n", o.Released)
	fmt.Fprintf(tw, "  window\t%d (in flight now %d)\n", o.Window, o.InFlight)
	fmt.Fprintf(tw, "  errors / retries / reconnects\t%d / %d / %d\n", o.Errors, o.Retries, o.Reconnects)
	fmt.Fprintln(tw, "bridge in (stream → ring)")
	i := res.In
	fmt.Fprintf(tw, "  fetched / written / acked\t%d / %d / %d\n", i.Fetched, i.Written, i.Acked)
	fmt.Fprintf(tw, "  duplicates / recovered\t%d / %d\n", i.Duplicates, i.Recovered)
	fmt.Fprintf(tw, "  pauses (ring pressure)\t%d\n", i.Pauses)
	fmt.Fprintf(tw, "  errors / resyncs / reconnects\t%d / %d / %d\n", i.Errors, i.Resyncs, i.Reconnects)
	fmt.Fprintln(tw, "rings (read from the segments)")
	fmt.Fprintf(tw, "  producers' ring: in / out, full events, drops\t%d / %d, %d, %d\n", res.RingOut.MsgsIn, res.RingOut.MsgsOut, res.RingOut.FullEvents, res.RingOut.Drops)
	fmt.Fprintf(tw, "  consumer's ring: in / out, duplicates, drops\t%d / %d, %d, %d\n", res.RingIn.MsgsIn, res.RingIn.MsgsOut, res.RingIn.Duplicates, res.RingIn.Drops)
	_ = tw.Flush()
	if err := os.RemoveAll(store); err != nil {
		return err
	}
	fmt.Fprintf(sio.out, "removed %s, %s and the server's store %s\n", show(res.RingOutPath), show(res.RingInPath), show(res.Store))
	return nil
}
