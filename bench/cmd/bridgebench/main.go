// Command bridgebench measures the out-bridge (package bridge) against an
// embedded JetStream server (internal/natsembed, its store in a temporary
// directory): producers → MPSC ring → bridge.Out → stream, against the same
// producers publishing directly with nats.go's PublishAsync (each with its
// own connection and a pending window as large as the bridge's).
//
// Shapes. By default, a deployment's: every producer is its own process,
// and so is the bridge; the parent holds only the embedded server and the
// orchestration (and, in paced cases, the reader). The children are
// bridgebench itself, re-executed with the environment variable
// BRIDGEBENCH_CHILD holding what each does (child.go): a producer opens
// the ring by name (its slot ID k+1) or connects to the server itself; the
// bridge opens the ring and runs bridge.NewOut and Run on it, as ringctl
// bridge out does. Each child sets up, says ready, and waits: the clock
// starts when the parent tells every producer to go, so that start-up is
// not timed. Children die with the parent (Pdeathsig, and the end of their
// stdin), are killed on any error, and the ring is removed at the end, on
// failure and on SIGINT or SIGTERM too. With --inproc, everything runs in
// one process as goroutines (the shape before; at a small GOMAXPROCS,
// producers parked on a full ring hold the scheduler slots that the bridge
// and the server need: docs/bridge.md, "The 1 KiB gap"). The output's
// first line names the shape.
//
// Two parts, both run round by round, the cases interleaved within each
// round so that the machine's state moves every case alike:
//
//   - Throughput: each producer writes --messages/--producers messages as
//     fast as it can; the clock stops when the stream has acknowledged the
//     last one: the bridge released it (in processes, the bridge's child
//     reports when its OutStats.Released reaches the case's messages, which
//     it watches once told that every producer is done); every
//     PublishAsync completed (in processes, the last producer's report that
//     all of its publishes are acknowledged; each must then exit 0). The
//     stream must hold every message. Bridged, direct, and direct with a
//     Nats-Msg-Id on every message (direct-id: what the bridge sends, so
//     the stream de-duplicates alike), memory and file storage, at each
//     --sizes. Each case's rate, and the CPU time per message (getrusage,
//     user and system): in processes, the parent's over the timed part
//     (the server and the orchestration) plus each child's own from its
//     ready to its last message done (a producer: sent, and acknowledged
//     if direct) or released (the bridge), its start-up and exit left out;
//     in-process, the one process's (producers, bridge or publishers, and
//     the server) over the timed part. And raw-id against fast-id: a bare
//     client publishing with a Nats-Msg-Id, a PubAck per message against
//     JetStream fast-ingest batches (the stream allowing them), the
//     protocol the only difference (docs/bridge.md, "Fast-ingest batches:
//     measured, not used").
//
//   - Paced: the producers write at --rate messages per second in all
//     (each message due at its time: a late one counts its wait), memory
//     storage. The time each Write call takes (ring Write; PublishAsync for
//     direct; in processes each child reports its calls' durations), and
//     the end-to-end latency, from the producer's timestamp in the message
//     (time.Now, CLOCK_REALTIME: one clock for every process of the host)
//     to its reading by a stream consumer in the parent (an ordered
//     consumer; for the ring alone, the ring's consumer). Cases: bridged,
//     direct, and the ring alone (no bridge: a plain consumer drains it).
//
//     go run ./bench/cmd/bridgebench [--inproc] [--messages 100000] [--sizes 64,1024] [--producers 2] [--conns 0] [--id ID] [--ring-mib 4] [--window 1024] [--rounds 3] [--rate 5000] [--paced 10000] [--cases LIST] [--cpuprofile FILE] [--blockprofile FILE] [--mutexprofile FILE]
//
// The profiles are the parent's: with the default shape, the server's and
// the orchestration's only; use --inproc to profile producers and bridge,
// or, for the bridge's own process, the environment:
// BRIDGEBENCH_BRIDGE_CPUPROFILE=DIR writes a CPU profile of each case's
// bridge process to DIR/bridge-PID.pprof, BRIDGEBENCH_BRIDGE_TRACE=DIR an
// execution trace to DIR/bridge-PID.trace (go tool trace), each from the
// process's start (set-up and the wait for "go" included) to its exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shmring/shmring/internal/natsembed"
	"github.com/shmring/shmring/ipc"
)

// params are the command line's.
type params struct {
	messages  int // per throughput case, all producers together
	producers int
	conns     int    // the bridge's OutConfig.Conns (0: its default)
	id        string // the bridge's OutConfig.ID ("": its default)
	ringMiB   int    // the ring's capacity, MiB
	window    int
	rate      int  // paced: messages per second, all producers together
	paced     int  // paced: messages per case
	inproc    bool // everything in this process (goroutines), not producers and the bridge in their own
}

func main() {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec))
	}
	var p params
	flag.IntVar(&p.messages, "messages", 100_000, "messages per throughput case (all producers together)")
	sizes := flag.String("sizes", "64,1024", "message sizes in bytes, comma-separated (at least 16: the number and the timestamp)")
	flag.IntVar(&p.producers, "producers", 2, "producers (processes, goroutines with --inproc; each an MPSC slot, or for direct its own connection)")
	flag.IntVar(&p.conns, "conns", 0, "the bridge's connections (OutConfig.Conns; 0: its default, one per producer slot up to 4)")
	flag.StringVar(&p.id, "id", "", "the bridge's Nats-Msg-Id prefix, OutConfig.ID (default: the bridge's, 11 characters); to compare ID lengths")
	flag.IntVar(&p.ringMiB, "ring-mib", 4, "the ring's capacity in MiB (a ring holding every message of a case never makes its producers wait)")
	flag.IntVar(&p.window, "window", 1024, "the bridge's window, and each direct publisher's PublishAsync pending limit")
	rounds := flag.Int("rounds", 3, "rounds")
	flag.IntVar(&p.rate, "rate", 5_000, "paced cases: messages per second, all producers together")
	flag.IntVar(&p.paced, "paced", 10_000, "paced cases: messages per case (0: skip them)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (every case) to this file")
	blockProfile := flag.String("blockprofile", "", "write a blocking profile (every blocking event: where goroutines wait) of the whole run to this file")
	mutexProfile := flag.String("mutexprofile", "", "write a mutex contention profile (every contention event) of the whole run to this file")
	only := flag.String("cases", "", "run only these cases, comma-separated (bridged/memory, direct/memory, direct-id/memory, raw-id/memory, fast-id/memory, and the same /file; bridged, direct, ring-only); the summary needs them all")
	flag.BoolVar(&p.inproc, "inproc", false, "run the producers (goroutines) and the bridge in this process, with the server, instead of each in its own process")
	flag.Parse()
	var sz []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 16 {
			fail(fmt.Errorf("--sizes: %q is not a size of at least 16 bytes", s))
		}
		sz = append(sz, n)
	}
	if p.messages < p.producers || p.producers < 1 || p.window < 1 || *rounds < 1 || p.rate < 1 || p.conns < 0 || p.ringMiB < 1 {
		fail(fmt.Errorf("--messages, --producers, --window, --rounds, --rate and --ring-mib must be positive (and messages at least producers), --conns not negative"))
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *mutexProfile != "" {
		runtime.SetMutexProfileFraction(1)
		defer writeProfile("mutex", *mutexProfile)
	}
	dir, err := os.MkdirTemp("", "bridgebench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	atExit = func() {
		killRunning()
		_ = ipc.Remove(ringName()) // if a case was running
		_ = os.RemoveAll(dir)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() { fail(fmt.Errorf("%v: stopped", <-sigs)) }()
	srv, err := natsembed.New(dir, 0)
	if err != nil {
		fail(err)
	}
	defer srv.Shutdown()
	// Each case deletes its stream and the next creates one at once.
	if err := srv.HoldStreamsDir(); err != nil {
		fail(err)
	}
	if *blockProfile != "" {
		// After the server's start: nats-server sets the rate (its
		// prof_block_rate option, 0 by default).
		runtime.SetBlockProfileRate(1)
		defer writeProfile("block", *blockProfile)
	}
	conns, err := bridgeConns(srv, p)
	if err != nil {
		fail(err)
	}
	if p.inproc {
		fmt.Printf("shape: in-process (%d producer goroutines, the bridge and the server in one process)\n", p.producers)
	} else {
		fmt.Printf("shape: producers: %d processes; bridge: its own process; the server in the parent\n", p.producers)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("bridgebench: %d producers; the bridge on %d connections, direct on %d; window %d, %d messages per throughput case, %d paced at %d/s, %d rounds; GOMAXPROCS %d, %d CPUs; load average %s\n",
		p.producers, conns, p.producers, p.window, p.messages, p.paced, p.rate, *rounds, runtime.GOMAXPROCS(0), runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "))

	type key struct {
		size int
		kase string
	}
	tput := map[key][]tputResult{}
	paced := map[key][]pacedResult{}
	for round := 1; round <= *rounds; round++ {
		for _, size := range sz {
			for _, c := range []struct {
				name    string
				bridged bool
				file    bool
				ids     bool
				raw     int
			}{{"bridged/memory", true, false, false, 0}, {"direct/memory", false, false, false, 0}, {"direct-id/memory", false, false, true, 0},
				{"raw-id/memory", false, false, true, rawAck}, {"fast-id/memory", false, false, true, rawFast},
				{"bridged/file", true, true, false, 0}, {"direct/file", false, true, false, 0}, {"direct-id/file", false, true, true, 0},
				{"raw-id/file", false, true, true, rawAck}, {"fast-id/file", false, true, true, rawFast}} {
				if !want(*only, c.name) {
					continue
				}
				res, err := throughput(srv, p, size, c.bridged, c.file, c.ids, c.raw)
				if err != nil {
					fail(fmt.Errorf("round %d, %d B, %s: %w", round, size, c.name, err))
				}
				tput[key{size, c.name}] = append(tput[key{size, c.name}], res)
				fmt.Printf("round %d  %5d B  %-15s %10.0f msgs/s  CPU %6.2f µs/msg\n", round, size, c.name, res.rate, us(res.cpu))
			}
			if p.paced == 0 {
				continue
			}
			for _, c := range []string{"bridged", "direct", "ring-only"} {
				if !want(*only, c) {
					continue
				}
				res, err := pacedRun(srv, p, size, c)
				if err != nil {
					fail(fmt.Errorf("round %d, %d B, paced %s: %w", round, size, c, err))
				}
				paced[key{size, c}] = append(paced[key{size, c}], res)
				fmt.Printf("round %d  %5d B  paced %-9s Write p50 %8v p99 %8v  end-to-end p50 %8v p99 %8v\n", round, size, c,
					r(res.writeP50), r(res.writeP99), r(res.e2eP50), r(res.e2eP99))
			}
		}
	}

	if *only != "" {
		return
	}
	fmt.Println("\nthroughput, msgs/s, median of the rounds (ratios: bridged / direct, the median of the per-round ratios)")
	fmt.Printf("%6s  %-7s %10s %10s %10s %10s %10s\n", "size", "storage", "bridged", "direct", "direct-id", "/direct", "/direct-id")
	for _, size := range sz {
		for _, st := range []string{"memory", "file"} {
			b, d, di := rates(tput[key{size, "bridged/" + st}]), rates(tput[key{size, "direct/" + st}]), rates(tput[key{size, "direct-id/" + st}])
			ratios, ratiosID := make([]float64, len(b)), make([]float64, len(b))
			for i := range b {
				ratios[i], ratiosID[i] = b[i]/d[i], b[i]/di[i]
			}
			fmt.Printf("%5dB  %-7s %10.0f %10.0f %10.0f %9.2fx %9.2fx\n", size, st, median(b), median(d), median(di), median(ratios), median(ratiosID))
		}
	}
	if p.inproc {
		fmt.Println("\nCPU time per message, µs, median of the rounds (the whole process: producers, bridge or publishers, and the server)")
	} else {
		fmt.Println("\nCPU time per message, µs, median of the rounds (the parent's: the server; and each child's from ready to done: producers or publishers, and the bridge)")
	}
	fmt.Printf("%6s  %-7s %10s %10s %10s\n", "size", "storage", "bridged", "direct", "direct-id")
	for _, size := range sz {
		for _, st := range []string{"memory", "file"} {
			fmt.Printf("%5dB  %-7s %10.2f %10.2f %10.2f\n", size, st,
				median(cpus(tput[key{size, "bridged/" + st}])), median(cpus(tput[key{size, "direct/" + st}])), median(cpus(tput[key{size, "direct-id/" + st}])))
		}
	}
	fmt.Println("\nraw-id against fast-id (a bare client, a PubAck per message against fast-ingest batches): msgs/s and CPU µs/msg, medians; the ratio the median of per-round ratios")
	fmt.Printf("%6s  %-7s %10s %10s %8s %8s %8s\n", "size", "storage", "raw-id", "fast-id", "/raw-id", "CPU raw", "CPU fast")
	for _, size := range sz {
		for _, st := range []string{"memory", "file"} {
			ra, fa := rates(tput[key{size, "raw-id/" + st}]), rates(tput[key{size, "fast-id/" + st}])
			ratios := make([]float64, len(fa))
			for i := range fa {
				ratios[i] = fa[i] / ra[i]
			}
			fmt.Printf("%5dB  %-7s %10.0f %10.0f %7.2fx %8.2f %8.2f\n", size, st, median(ra), median(fa), median(ratios),
				median(cpus(tput[key{size, "raw-id/" + st}])), median(cpus(tput[key{size, "fast-id/" + st}])))
		}
	}
	if p.paced == 0 {
		return
	}
	fmt.Println("\npaced, median of the rounds (Write: the producer's call; end-to-end: producer's timestamp to the reader)")
	fmt.Printf("%6s  %-9s %10s %10s %12s %12s\n", "size", "case", "Write p50", "Write p99", "e2e p50", "e2e p99")
	for _, size := range sz {
		for _, c := range []string{"bridged", "direct", "ring-only"} {
			rs := paced[key{size, c}]
			fmt.Printf("%5dB  %-9s %10v %10v %12v %12v\n", size, c,
				medianDur(rs, func(r pacedResult) time.Duration { return r.writeP50 }),
				medianDur(rs, func(r pacedResult) time.Duration { return r.writeP99 }),
				medianDur(rs, func(r pacedResult) time.Duration { return r.e2eP50 }),
				medianDur(rs, func(r pacedResult) time.Duration { return r.e2eP99 }))
		}
		b, o := paced[key{size, "bridged"}], paced[key{size, "ring-only"}]
		ratios := make([]float64, len(b))
		for i := range b {
			ratios[i] = float64(b[i].writeP99) / float64(max(o[i].writeP99, 1))
		}
		fmt.Printf("%5dB  Write p99 with the bridge / without: %.2fx (median of per-round ratios)\n", size, median(ratios))
	}
}

// rates and cpus are the throughput results' messages per second and CPU
// microseconds per message.
func rates(rs []tputResult) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.rate
	}
	return v
}

func cpus(rs []tputResult) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = us(r.cpu)
	}
	return v
}

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// want reports whether the --cases list only names kase ("": every case).
func want(only, kase string) bool {
	return only == "" || slices.Contains(strings.Split(only, ","), kase)
}

// atExit cleans up for fail: kills the children, removes the ring and
// the server's store.
var atExit = killRunning

// fail reports err and exits 1, after atExit.
func fail(err error) {
	atExit()
	fmt.Fprintln(os.Stderr, "bridgebench:", err)
	os.Exit(1)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianDur(rs []pacedResult, f func(pacedResult) time.Duration) time.Duration {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = float64(f(r))
	}
	return r(time.Duration(median(v)))
}

// r rounds d for printing: to 100 ns, or 10 µs above a millisecond.
func r(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}

// pct returns the p-th percentile of sorted s.
func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[int(float64(len(s)-1)*p/100)]
}

// withTimeout is a context for one case: far above any working run.
func withTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Minute)
}

// writeProfile writes the named runtime profile (block, mutex) to file.
func writeProfile(name, file string) {
	f, err := os.Create(file)
	if err == nil {
		err = errors.Join(pprof.Lookup(name).WriteTo(f, 0), f.Close())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bridgebench: %s profile: %v\n", name, err)
	}
}
