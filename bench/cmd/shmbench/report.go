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
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "case (processes)\t")
	for _, r := range rep.Rounds {
		fmt.Fprintf(tw, "round %d\t", r.Round)
	}
	fmt.Fprint(tw, "median\t\n")
	for _, c := range cases {
		if _, skip := rep.Skipped[c.Name]; skip {
			continue
		}
		fmt.Fprintf(tw, "%s (%d)\t", c.Name, c.Procs)
		for _, r := range rep.Rounds {
			fmt.Fprintf(tw, "%.2f M/s\t", r.Rates[c.Name]/1e6)
		}
		fmt.Fprintf(tw, "%.2f M/s\t\n", rep.Median[c.Name]/1e6)
	}
	_ = tw.Flush()
	fmt.Println("\nCPU seconds per million messages (all processes of the case, start-up included), median over rounds:")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, c := range cases {
		var v []float64
		for _, r := range rep.Rounds {
			if x := r.CPU[c.Name]; x > 0 {
				v = append(v, x)
			}
		}
		if len(v) > 0 {
			fmt.Fprintf(tw, "%s\t%.3f\t\n", c.Name, median(v))
		}
	}
	_ = tw.Flush()
	if len(rep.Rounds) > 0 && len(rep.Rounds[0].Probe) > 0 {
		fmt.Printf("\ncache-line round trip just before and after each case, and the machine's state (slow: over three times the run's fastest probe, %v):\n", time.Duration(rep.ProbeFloor))
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
	fmt.Println("\nratios, round by round (in brackets: the two ran in different machine states, left out), then the median of the rest:")
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
		fmt.Fprintf(tw, "%.2fx\t\n", rep.Ratios[key])
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
		fmt.Println("\nthroughput by message size, MiB/s, median over rounds:")
		tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "size\t")
		for _, c := range pick(bench.SweepCases()) {
			fmt.Fprintf(tw, "%s\t", c.Name)
		}
		fmt.Fprint(tw, "\n")
		for _, size := range rep.Sizes {
			fmt.Fprintf(tw, "%s\t", units.FormatSize(size))
			for _, c := range pick(bench.SweepCases()) {
				fmt.Fprintf(tw, "%.0f\t", rep.SizeMedian[strconv.FormatUint(size, 10)][c.Name]/(1<<20))
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
			fmt.Printf("  %-30s %.2fx  (%d rounds in the same state)\n", key, v, rep.LatRatioRounds[key])
		} else if _, ran := rep.LatRatioRounds[key]; ran {
			fmt.Printf("  %-30s no round in the same state\n", key)
		}
	}
	for name, why := range rep.Skipped {
		fmt.Printf("skipped %s: %s\n", name, why)
	}
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
	}
	for _, c := range bench.LatencyCases() {
		if !ran(c.Name) {
			continue
		}
		if l := rep.LatMedian[c.Name]; l.P50 <= 0 || l.Max < l.P50 {
			return rep, fmt.Errorf("%s: no latency for %s", path, c.Name)
		}
	}
	for key, n := range rep.RatioRounds {
		if _, ok := rep.Ratios[key]; n < 0 || n > len(rep.Rounds) || ok != (n > 0) {
			return rep, fmt.Errorf("%s: ratio %s over %d same-state rounds of %d", path, key, n, len(rep.Rounds))
		}
	}
	return rep, nil
}
