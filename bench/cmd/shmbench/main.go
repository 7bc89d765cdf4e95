// Command shmbench compares shmring with its peers (Go channels, Unix
// domain sockets, pipes and a C ring in shared memory) between real
// processes, interleaved in rounds so that machine drift hits every case
// alike, and reports each round and the per-round ratios. A cache-line
// probe just before and after each case tells the machine's fast or slow
// state; a ratio's median is over the rounds that ran the case and its peer
// in the same state.
//
//	go run ./bench/cmd/shmbench [--rounds 5] [--messages 4000000] [--json] [--quick]
//	go run ./bench/cmd/shmbench --check-json FILE [--table] [--plot FILE]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shmring/shmring/bench"
	"github.com/shmring/shmring/internal/units"
)

type roundResult struct {
	Round int                `json:"round"`
	Rates map[string]float64 `json:"msgs_per_sec"`
	// Probe and ProbeAfter are the cache-line round trip (ns) measured
	// just before and just after each case: the machine's fast or slow
	// state when it ran (see stateOf).
	Probe      map[string]int64 `json:"probe_ns,omitempty"`
	ProbeAfter map[string]int64 `json:"probe_after_ns,omitempty"`
	// CPU is the user+system time of every process of the case, in
	// seconds per million messages (0: not measured, the C ring).
	CPU map[string]float64 `json:"cpu_seconds_per_million_messages,omitempty"`
}

type report struct {
	Machine  string             `json:"machine"`
	CPUs     int                `json:"cpus"`
	Go       string             `json:"go"`
	Date     time.Time          `json:"date"`
	Messages uint64             `json:"messages"`
	Size     uint64             `json:"message_bytes"`
	Rounds   []roundResult      `json:"rounds"`
	Median   map[string]float64 `json:"median_msgs_per_sec"`
	Ratios   map[string]float64 `json:"median_ratios"` // "case/peer": median of per-round ratios, same-state rounds only
	// RatioRounds: for each ratio, how many rounds ran the case and its
	// peer in the same machine state (the rounds the median is over).
	RatioRounds map[string]int `json:"ratio_rounds"`
	// ProbeFloor is the fastest cache-line probe of the run (ns): a probe
	// over three times it marks the slow state.
	ProbeFloor int64 `json:"probe_floor_ns,omitempty"`
	// MedianCPU: per case, the median over rounds of its CPU (every
	// process, seconds per million messages).
	MedianCPU map[string]float64 `json:"median_cpu_seconds_per_million_messages"`
	// ByState: the medians and ratios again, over the rounds of one
	// machine state only ("fast", "slow"), so that neither state's
	// figures are read alone.
	ByState map[string]stateSummary `json:"by_state"`
	// OneCore: per one-core case, the median over every round of its
	// cost per message (its thread's CPU time, ns); CostRatios: per
	// bench.CostRatios pair, the median of per-round cost ratios (case
	// ns over peer ns) over every round, CostRatioRounds how many.
	OneCore         map[string]float64 `json:"one_core_ns_per_message"`
	CostRatios      map[string]float64 `json:"one_core_cost_ratios"`
	CostRatioRounds map[string]int     `json:"one_core_cost_ratio_rounds"`

	RoundTrips     int                      `json:"latency_round_trips"`
	Latency        map[string][]latencyJSON `json:"latency"`            // per case, one per round
	LatMedian      map[string]latencyJSON   `json:"latency_median"`     // per case, medians over rounds
	LatRatios      map[string]float64       `json:"latency_p50_ratios"` // same-state rounds only
	LatRatioRounds map[string]int           `json:"latency_ratio_rounds"`
	Skipped        map[string]string        `json:"skipped,omitempty"`          // case: why
	Only           []string                 `json:"only,omitempty"`             // --cases: the cases run, if not all
	IdleCPU        map[string]float64       `json:"idle_consumer_cpu_fraction"` // wait policy: fraction of a core

	// Sizes: bytes per second of the size sweep, per size, case and round.
	Sizes      []uint64                        `json:"sweep_sizes"`
	SizeRates  map[string]map[string][]float64 `json:"sweep_bytes_per_sec"` // size -> case -> rounds
	SizeMedian map[string]map[string]float64   `json:"sweep_median_bytes_per_sec"`
	// SizeCPU: CPU seconds per million messages of the size sweep, per
	// size, case and round.
	SizeCPU map[string]map[string][]float64 `json:"sweep_cpu_seconds_per_million_messages"`
}

// stateSummary is a report's figures over the rounds of one machine state.
type stateSummary struct {
	Median          map[string]float64 `json:"median_msgs_per_sec"`
	CPU             map[string]float64 `json:"median_cpu_seconds_per_million_messages"`
	Ratios          map[string]float64 `json:"median_ratios"`
	RatioRounds     map[string]int     `json:"ratio_rounds"`
	CostRatios      map[string]float64 `json:"one_core_cost_ratios"`
	CostRatioRounds map[string]int     `json:"one_core_cost_ratio_rounds"`
	LatRatios       map[string]float64 `json:"latency_p50_ratios"`
	LatRatioRounds  map[string]int     `json:"latency_ratio_rounds"`
}

// latencyJSON is one latency measurement, in nanoseconds.
type latencyJSON struct {
	P50  int64 `json:"p50_ns"`
	P99  int64 `json:"p99_ns"`
	P999 int64 `json:"p999_ns"`
	Max  int64 `json:"max_ns"`
	CPU  int64 `json:"cpu_ns_per_round_trip"`
	// Probe and ProbeAfter: the cache-line probes around the case (ns).
	Probe      int64 `json:"probe_ns,omitempty"`
	ProbeAfter int64 `json:"probe_after_ns,omitempty"`
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == bench.ChildArg {
		if err := bench.RunChild(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, "shmbench child:", err)
			os.Exit(1)
		}
		return
	}
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	messages := flag.Uint64("messages", 4_000_000, "messages per case per round")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	quick := flag.Bool("quick", false, "one short round (CI: that it runs, not how fast)")
	roundTrips := flag.Int("round-trips", 20000, "round trips per latency case per round")
	sizesFlag := flag.String("sizes", "8,64,512,4KiB,64KiB", "message sizes of the throughput sweep (shmring, Unix socket, pipe)")
	plotPath := flag.String("plot", "", "write an SVG plot of the sweep and the latencies to this file")
	check := flag.String("check-json", "", "validate a JSON report written by --json and exit (with --plot: draw its plot; with --table: print its tables)")
	table := flag.Bool("table", false, "with --check-json: print the report's tables, as a run without --json does")
	casesFlag := flag.String("cases", "", "run only these cases (comma-separated names, as in the tables; \"idle\" for the idle consumer)")
	flag.Parse()
	if *casesFlag != "" {
		only = map[string]bool{}
		for _, c := range strings.Split(*casesFlag, ",") {
			only[strings.TrimSpace(c)] = true
		}
	}
	if *check != "" {
		rep, err := checkJSON(*check)
		if err != nil {
			fmt.Fprintln(os.Stderr, "shmbench:", err)
			os.Exit(1)
		}
		if *plotPath != "" { // redraw the plot of a saved report
			if err := writePlot(*plotPath, rep); err != nil {
				fmt.Fprintln(os.Stderr, "shmbench: plot:", err)
				os.Exit(1)
			}
		}
		if *table {
			only = nil
			if len(rep.Only) > 0 {
				only = map[string]bool{}
				for _, c := range rep.Only {
					only[c] = true
				}
			}
			printTable(rep, pick(bench.Cases()))
			return
		}
		fmt.Println("shmbench: report ok:", *check)
		return
	}
	if *quick {
		*rounds, *messages, *roundTrips = 1, 100_000, 2000
		if *sizesFlag == "8,64,512,4KiB,64KiB" {
			*sizesFlag = "64,4KiB"
		}
	}
	var sizes []uint64
	for _, f := range strings.Split(*sizesFlag, ",") {
		v, err := units.ParseSize(strings.TrimSpace(f))
		if err != nil || v < 8 || v > 64<<10 {
			fmt.Fprintf(os.Stderr, "shmbench: --sizes %q: want sizes from 8 B to 64 KiB\n", f)
			os.Exit(2)
		}
		sizes = append(sizes, v)
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "shmbench:", err)
		os.Exit(1)
	}
	rep := report{Machine: cpuModel(), CPUs: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC(),
		Messages: *messages, Size: 64, Median: map[string]float64{}, Ratios: map[string]float64{}, RatioRounds: map[string]int{},
		RoundTrips: *roundTrips, Latency: map[string][]latencyJSON{}, LatMedian: map[string]latencyJSON{}, LatRatios: map[string]float64{}, LatRatioRounds: map[string]int{},
		Skipped: map[string]string{}, IdleCPU: map[string]float64{}, Sizes: sizes, SizeRates: map[string]map[string][]float64{}, SizeMedian: map[string]map[string]float64{},
		SizeCPU: map[string]map[string][]float64{}}
	cases := pick(bench.Cases())
	rep.Only = slices.Sorted(maps.Keys(only))
	skipped := rep.Skipped
	progress := func(format string, a ...any) {}
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		progress = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "\r\033[K"+format, a...) }
	}
	for i := 1; i <= *rounds; i++ {
		rr := roundResult{Round: i, Rates: map[string]float64{}, Probe: map[string]int64{}, ProbeAfter: map[string]int64{}, CPU: map[string]float64{}}
		for _, c := range cases {
			progress("shmbench: round %d/%d, %s", i, *rounds, c.Name)
			before := probe()
			res, err := c.RunCPU(exe, *messages, 64)
			rr.Probe[c.Name], rr.ProbeAfter[c.Name] = before, probe()
			rate := res.Rate
			if errors.Is(err, bench.ErrSkipped) {
				skipped[c.Name] = err.Error()
				continue
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "\nshmbench:", err)
				os.Exit(1)
			}
			rr.Rates[c.Name] = rate
			rr.CPU[c.Name] = res.CPUPerMsg.Seconds() * 1e6
		}
		rep.Rounds = append(rep.Rounds, rr)
		for _, size := range sizes {
			key := strconv.FormatUint(size, 10)
			if rep.SizeRates[key] == nil {
				rep.SizeRates[key], rep.SizeCPU[key] = map[string][]float64{}, map[string][]float64{}
			}
			n := max(1000, min(*messages, (256<<20)/size)) // at most 256 MiB a case
			for _, c := range pick(bench.SweepCases()) {
				progress("shmbench: round %d/%d, %s at %s", i, *rounds, c.Name, units.FormatSize(size))
				res, err := c.RunCPU(exe, n, size)
				if err != nil {
					fmt.Fprintln(os.Stderr, "\nshmbench:", err)
					os.Exit(1)
				}
				rep.SizeRates[key][c.Name] = append(rep.SizeRates[key][c.Name], res.Rate*float64(size))
				rep.SizeCPU[key][c.Name] = append(rep.SizeCPU[key][c.Name], res.CPUPerMsg.Seconds()*1e6)
			}
		}
		for _, c := range pickLatency(bench.LatencyCases()) {
			progress("shmbench: round %d/%d, latency %s", i, *rounds, c.Name)
			before := probe()
			l, err := c.Run(exe, *roundTrips)
			after := probe()
			if errors.Is(err, bench.ErrSkipped) {
				skipped[c.Name] = err.Error()
				continue
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "\nshmbench:", err)
				os.Exit(1)
			}
			rep.Latency[c.Name] = append(rep.Latency[c.Name], latencyJSON{int64(l.P50), int64(l.P99), int64(l.P999), int64(l.Max), int64(l.CPUPerRoundTrip), before, after})
		}
	}
	idleFor := 2 * time.Second
	if *quick {
		idleFor = 300 * time.Millisecond
	}
	for _, pol := range []string{"park", "hybrid"} {
		if only != nil && !only["idle"] {
			break
		}
		progress("shmbench: an idle %s consumer for %v", pol, idleFor)
		f, err := bench.IdleCPU(exe, pol, idleFor)
		if err != nil {
			fmt.Fprintln(os.Stderr, "\nshmbench:", err)
			os.Exit(1)
		}
		rep.IdleCPU[pol] = f
	}
	for size, byCase := range rep.SizeRates {
		rep.SizeMedian[size] = map[string]float64{}
		for name, v := range byCase {
			rep.SizeMedian[size][name] = median(v)
		}
	}
	for name, ls := range rep.Latency {
		med := func(f func(latencyJSON) int64) int64 {
			var v []float64
			for _, l := range ls {
				v = append(v, float64(f(l)))
			}
			return int64(median(v))
		}
		rep.LatMedian[name] = latencyJSON{P50: med(func(l latencyJSON) int64 { return l.P50 }), P99: med(func(l latencyJSON) int64 { return l.P99 }),
			P999: med(func(l latencyJSON) int64 { return l.P999 }), Max: med(func(l latencyJSON) int64 { return l.Max }), CPU: med(func(l latencyJSON) int64 { return l.CPU })}
	}
	rep.ProbeFloor = probeFloor(rep)
	rep.LatRatios, rep.LatRatioRounds = latRatios(rep, "")
	progress("")
	summarize(&rep, cases)
	if *plotPath != "" {
		if err := writePlot(*plotPath, rep); err != nil {
			fmt.Fprintln(os.Stderr, "shmbench: plot:", err)
			os.Exit(1)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	printTable(rep, cases)
}

// only is the set of cases --cases asked for; nil: every case.
var only map[string]bool

func pick(cs []bench.Case) []bench.Case {
	return slices.DeleteFunc(cs, func(c bench.Case) bool { return only != nil && !only[c.Name] })
}

func pickLatency(cs []bench.LatencyCase) []bench.LatencyCase {
	return slices.DeleteFunc(cs, func(c bench.LatencyCase) bool { return only != nil && !only[c.Name] })
}

var latencyRatios = [][2]string{{"shmring-spin", "c-ring-spin"}, {"shmring-spin-hc", "c-ring-spin"}, {"shmring-spin", "c-spin"},
	{"shmring-hybrid", "c-ring-hybrid"}, {"shmring-hybrid-hc", "c-ring-hybrid"},
	{"shmring-park", "futex"}, {"shmring-park", "c-park"}, {"shmring-spin", "futex"}, {"shmring-hybrid", "futex"},
	{"shmring-park", "unix-stream"}, {"shmring-spin", "unix-stream"}}

// probe measures the cache-line round trip now, in ns; 0 if it cannot
// (no C compiler).
func probe() int64 {
	d, err := bench.Probe()
	if err != nil {
		return 0
	}
	return int64(d)
}

// probeFloor is the fastest probe of the run, 0 if none was measured.
func probeFloor(rep report) int64 {
	var floor int64
	low := func(p int64) {
		if p > 0 && (floor == 0 || p < floor) {
			floor = p
		}
	}
	for _, r := range rep.Rounds {
		for _, m := range []map[string]int64{r.Probe, r.ProbeAfter} {
			for _, p := range m {
				low(p)
			}
		}
	}
	for _, ls := range rep.Latency {
		for _, l := range ls {
			low(l.Probe)
			low(l.ProbeAfter)
		}
	}
	return floor
}

// stateOf names the machine state a case ran in, from the cache-line
// probes just before and after it: "fast" or "slow" when both fall on the
// same side of three times the run's fastest probe (on this VM the fast
// state's probes spread up to 2x above the fastest, the slow state's sit
// 4x to 6x above it), "mixed" when the state changed during the case, ""
// when the case was not probed (then every round compares).
func stateOf(before, after, floor int64) string {
	if before == 0 || after == 0 || floor == 0 {
		return ""
	}
	slow := func(p int64) bool { return p > 3*floor }
	switch {
	case slow(before) != slow(after):
		return "mixed"
	case slow(before):
		return "slow"
	}
	return "fast"
}

// sameState reports whether a case and its peer that ran in these states
// may be compared: the same state, and not one that changed mid-case.
func sameState(a, b string) bool { return a == b && a != "mixed" }

func (r roundResult) state(name string, floor int64) string {
	return stateOf(r.Probe[name], r.ProbeAfter[name], floor)
}

func (l latencyJSON) state(floor int64) string { return stateOf(l.Probe, l.ProbeAfter, floor) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
