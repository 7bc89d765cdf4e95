package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shmring/shmring/bench"
	"github.com/shmring/shmring/internal/units"
)

func printTable(rep report, cases []bench.Case) {
	fmt.Printf("%d messages of %d B per case per round; %s, %d CPUs, %s\n\n", rep.Messages, rep.Size, rep.Machine, rep.CPUs, rep.Go)
	ran := slices.DeleteFunc(slices.Clone(cases), func(c bench.Case) bool { _, skip := rep.Skipped[c.Name]; return skip })
	oneCore := slices.DeleteFunc(slices.Clone(ran), func(c bench.Case) bool { return !bench.OneCore(c.Name) })
	ran = slices.DeleteFunc(ran, func(c bench.Case) bool { return bench.OneCore(c.Name) })
	if len(oneCore) > 0 {
		fmt.Println("the path's own cost, one goroutine writing and reading back in one core's cache: ns per message (its thread's CPU time), median over every round:")
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "case\t")
		for _, r := range rep.Rounds {
			fmt.Fprintf(tw, "round %d\t", r.Round)
		}
		fmt.Fprint(tw, "median\t\n")
		for _, c := range oneCore {
			fmt.Fprintf(tw, "%s\t", c.Name)
			for _, r := range rep.Rounds {
				fmt.Fprintf(tw, "%.2f ns\t", 1e9/r.Rates[c.Name])
			}
			fmt.Fprintf(tw, "%.2f ns\t\n", rep.OneCore[c.Name])
		}
		_ = tw.Flush()
		fmt.Println("\ncost ratios (shmring's ns over the C loop's), round by round, then the median of every round and of each state's rounds:")
		tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, q := range bench.CostRatios() {
			key := q.Case + "/" + q.Peer
			if _, ok := rep.CostRatioRounds[key]; !ok {
				continue
			}
			fmt.Fprintf(tw, "%s / %s\t", q.Case, q.Peer)
			for _, r := range rep.Rounds {
				fmt.Fprintf(tw, "%.2fx\t", r.Rates[q.Peer]/r.Rates[q.Case])
			}
			fmt.Fprintf(tw, "all %.2fx\t%s\t%s\t\n", rep.CostRatios[key], stateRatio(rep, "fast", key, true), stateRatio(rep, "slow", key, true))
		}
		_ = tw.Flush()
		fmt.Println()
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "case (processes)\t")
	for _, r := range rep.Rounds {
		fmt.Fprintf(tw, "round %d\t", r.Round)
	}
	fmt.Fprint(tw, "median\tfast\tslow\tCPU s/M msgs\tfast\tslow\t\n")
	for _, c := range ran {
		fmt.Fprintf(tw, "%s (%d)\t", c.Name, c.Procs)
		for _, r := range rep.Rounds {
			fmt.Fprintf(tw, "%.2f M/s\t", r.Rates[c.Name]/1e6)
		}
		fmt.Fprintf(tw, "%.2f M/s\t%s\t%s\t%.3f\t%s\t%s\t\n", rep.Median[c.Name]/1e6,
			orDash(rep.ByState["fast"].Median[c.Name]/1e6, "%.2f M/s"), orDash(rep.ByState["slow"].Median[c.Name]/1e6, "%.2f M/s"),
			rep.MedianCPU[c.Name], orDash(rep.ByState["fast"].CPU[c.Name], "%.3f"), orDash(rep.ByState["slow"].CPU[c.Name], "%.3f"))
	}
	_ = tw.Flush()
	fmt.Println("(fast, slow: medians over the rounds the case ran in that machine state; CPU: user+system time of every process of the case, start-up included)")
	if len(rep.Rounds) > 0 && len(rep.Rounds[0].Probe) > 0 {
		fmt.Printf("\ncache-line round trip just before and after each case, and the machine's state (slow: over three times the run's fastest probe, %v):\n", time.Duration(rep.ProbeFloor))
		if rep.ProbeFloor > 200 {
			fmt.Println("(no probe of this run came under 200ns: if the machine never reached its fast state, what is called fast here is its slow state; the fast state's probes measured 70 to 140ns on the machines measured so far)")
		}
		tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, c := range cases {
			if _, skip := rep.Skipped[c.Name]; skip {
				continue
			}
			fmt.Fprintf(tw, "%s\t", c.Name)
			for _, r := range rep.Rounds {
				fmt.Fprintf(tw, "%v %v %s\t", time.Duration(r.Probe[c.Name]), time.Duration(r.ProbeAfter[c.Name]), r.state(c.Name, rep.ProbeFloor))
			}
			fmt.Fprint(tw, "\n")
		}
		_ = tw.Flush()
	}
	fmt.Println("\nratios, round by round (in brackets: the two ran in different machine states, left out), then the median of the rest, and of each state's rounds (how many):")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, q := range bench.Ratios() {
		key := q.Case + "/" + q.Peer
		n, ran := rep.RatioRounds[key]
		if !ran {
			continue
		}
		fmt.Fprintf(tw, "%s / %s\t", q.Case, q.Peer)
		for _, r := range rep.Rounds {
			x := r.Rates[q.Case] / r.Rates[q.Peer]
			if sameState(r.state(q.Case, rep.ProbeFloor), r.state(q.Peer, rep.ProbeFloor)) {
				fmt.Fprintf(tw, "%.2fx\t", x)
			} else {
				fmt.Fprintf(tw, "[%.2fx]\t", x)
			}
		}
		if n == 0 {
			fmt.Fprint(tw, "no round in the same state\t\n")
			continue
		}
		fmt.Fprintf(tw, "%.2fx\t%s\t%s\t\n", rep.Ratios[key], stateRatio(rep, "fast", key, false), stateRatio(rep, "slow", key, false))
	}
	_ = tw.Flush()
	if len(rep.LatMedian) > 0 {
		fmt.Printf("\nround trips between two processes, 64 B, %d per case per round; medians over rounds:\n", rep.RoundTrips)
		tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "case\tp50\tp99\tp99.9\tmax\tCPU per round trip\t\n")
		for _, c := range bench.LatencyCases() {
			l, ok := rep.LatMedian[c.Name]
			if !ok {
				continue
			}
			fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%v\t%v\t\n", c.Name, time.Duration(l.P50), time.Duration(l.P99), time.Duration(l.P999), time.Duration(l.Max), time.Duration(l.CPU))
		}
		_ = tw.Flush()
	}
	if len(rep.Sizes) > 0 && len(pick(bench.SweepCases())) > 0 {
		fmt.Println("\nthroughput by message size, MiB/s (CPU seconds per million messages), median over rounds:")
		tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "size\t")
		for _, c := range pick(bench.SweepCases()) {
			fmt.Fprintf(tw, "%s\t", c.Name)
		}
		fmt.Fprint(tw, "\n")
		for _, size := range rep.Sizes {
			fmt.Fprintf(tw, "%s\t", units.FormatSize(size))
			for _, c := range pick(bench.SweepCases()) {
				key := strconv.FormatUint(size, 10)
				fmt.Fprintf(tw, "%.0f (%.3f)\t", rep.SizeMedian[key][c.Name]/(1<<20), median(rep.SizeCPU[key][c.Name]))
			}
			fmt.Fprint(tw, "\n")
		}
		_ = tw.Flush()
	}
	if len(rep.IdleCPU) > 0 {
		fmt.Printf("\nan idle consumer with nothing to read uses %.3f%% of a core parked, %.3f%% with hybrid\n", 100*rep.IdleCPU["park"], 100*rep.IdleCPU["hybrid"])
	}
	if len(rep.LatRatios) > 0 {
		fmt.Println("\np50 ratios, median over rounds:")
	}
	for _, q := range latencyRatios {
		key := q[0] + "/" + q[1]
		if v, ok := rep.LatRatios[key]; ok {
			st := func(s string) string {
				if x, ok := rep.ByState[s].LatRatios[key]; ok {
					return fmt.Sprintf("%s %.2fx (%d)", s, x, rep.ByState[s].LatRatioRounds[key])
				}
				return s + " -"
			}
			fmt.Printf("  %-30s %.2fx  (%d rounds in the same state)  %s  %s\n", key, v, rep.LatRatioRounds[key], st("fast"), st("slow"))
		} else if _, ran := rep.LatRatioRounds[key]; ran {
			fmt.Printf("  %-30s no round in the same state\n", key)
		}
	}
	for name, why := range rep.Skipped {
		fmt.Printf("skipped %s: %s\n", name, why)
	}
}

// orDash formats v, or "-" when it is 0 (no round in that state).
func orDash(v float64, format string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// stateRatio formats the ratio key over state st's rounds, with their
// count: a cost ratio (one-core) or a rate ratio.
func stateRatio(rep report, st, key string, cost bool) string {
	s := rep.ByState[st]
	v, ok, n := s.Ratios[key], false, s.RatioRounds[key]
	_, ok = s.Ratios[key]
	if cost {
		v, n = s.CostRatios[key], s.CostRatioRounds[key]
		_, ok = s.CostRatios[key]
	}
	if !ok {
		return st + " -"
	}
	return fmt.Sprintf("%s %.2fx (%d)", st, v, n)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func checkJSON(path string) (report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return report{}, err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	if len(rep.Rounds) == 0 || rep.Messages == 0 {
		return rep, fmt.Errorf("%s: no rounds", path)
	}
	ran := func(name string) bool {
		_, skip := rep.Skipped[name]
		return !skip && (len(rep.Only) == 0 || slices.Contains(rep.Only, name))
	}
	for _, c := range bench.Cases() {
		if !ran(c.Name) {
			continue
		}
		if !(rep.Median[c.Name] > 0) {
			return rep, fmt.Errorf("%s: no positive rate for %s", path, c.Name)
		}
		if !(rep.MedianCPU[c.Name] > 0) {
			return rep, fmt.Errorf("%s: no CPU per message for %s", path, c.Name)
		}
		if bench.OneCore(c.Name) && !(rep.OneCore[c.Name] > 0) {
			return rep, fmt.Errorf("%s: no cost per message for the one-core case %s", path, c.Name)
		}
	}
	for _, c := range bench.LatencyCases() {
		if !ran(c.Name) {
			continue
		}
		if l := rep.LatMedian[c.Name]; l.P50 <= 0 || l.Max < l.P50 {
			return rep, fmt.Errorf("%s: no latency for %s", path, c.Name)
		}
	}
	counts := func(what string, ratios map[string]float64, rounds map[string]int) error {
		for key, n := range rounds {
			if _, ok := ratios[key]; n < 0 || n > len(rep.Rounds) || ok != (n > 0) {
				return fmt.Errorf("%s: %s %s over %d rounds of %d", path, what, key, n, len(rep.Rounds))
			}
		}
		return nil
	}
	if err := counts("ratio", rep.Ratios, rep.RatioRounds); err != nil {
		return rep, err
	}
	if err := counts("cost ratio", rep.CostRatios, rep.CostRatioRounds); err != nil {
		return rep, err
	}
	for _, st := range []string{"fast", "slow"} {
		s, ok := rep.ByState[st]
		if !ok {
			return rep, fmt.Errorf("%s: no %s-state summary (by_state)", path, st)
		}
		if err := counts(st+"-state ratio", s.Ratios, s.RatioRounds); err != nil {
			return rep, err
		}
		if err := counts(st+"-state cost ratio", s.CostRatios, s.CostRatioRounds); err != nil {
			return rep, err
		}
		if err := counts(st+"-state latency ratio", s.LatRatios, s.LatRatioRounds); err != nil {
			return rep, err
		}
	}
	return rep, nil
}
