// Command abcompare summarises the runs of scripts/ab.sh: for each case,
// the median rate (throughput cases) or p50 round trip (latency cases) of
// each side over the rounds, and the median over rounds of new/old, each
// round's ratio taken within the round so both sides saw the same machine
// state.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

type report struct {
	Rounds []struct {
		Rates map[string]float64 `json:"msgs_per_sec"`
		Probe map[string]int64   `json:"probe_ns"`
	} `json:"rounds"`
	Latency map[string][]struct {
		P50   int64 `json:"p50_ns"`
		Probe int64 `json:"probe_ns"`
	} `json:"latency"`
}

func load(dir, side string, r int) (report, error) {
	var rep report
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s-%d.json", side, r)))
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	return rep, err
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type series struct {
	old, new, ratio []float64
	probes          []string
	latency         bool
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: abcompare DIR ROUNDS OLD NEW")
		os.Exit(2)
	}
	dir := os.Args[1]
	rounds, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "abcompare: ROUNDS:", err)
		os.Exit(2)
	}
	all := map[string]*series{}
	var names []string
	get := func(name string, lat bool) *series {
		s := all[name]
		if s == nil {
			s = &series{latency: lat}
			all[name] = s
			names = append(names, name)
		}
		return s
	}
	for r := 1; r <= rounds; r++ {
		o, err := load(dir, "old", r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "abcompare:", err)
			os.Exit(1)
		}
		n, err := load(dir, "new", r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "abcompare:", err)
			os.Exit(1)
		}
		if len(o.Rounds) == 1 && len(n.Rounds) == 1 {
			for name, ov := range o.Rounds[0].Rates {
				nv, ok := n.Rounds[0].Rates[name]
				if !ok || ov == 0 {
					continue
				}
				s := get(name, false)
				s.old, s.new, s.ratio = append(s.old, ov), append(s.new, nv), append(s.ratio, nv/ov)
				s.probes = append(s.probes, fmt.Sprintf("%d/%d", o.Rounds[0].Probe[name], n.Rounds[0].Probe[name]))
			}
		}
		for name, ol := range o.Latency {
			nl := n.Latency[name]
			if len(ol) != 1 || len(nl) != 1 || ol[0].P50 == 0 {
				continue
			}
			s := get(name, true)
			ov, nv := float64(ol[0].P50), float64(nl[0].P50)
			s.old, s.new, s.ratio = append(s.old, ov), append(s.new, nv), append(s.ratio, nv/ov)
			s.probes = append(s.probes, fmt.Sprintf("%d/%d", ol[0].Probe, nl[0].Probe))
		}
	}
	slices.Sort(names)
	fmt.Printf("old=%s new=%s, %d interleaved rounds; new/old per round, median (throughput: >1 better; round trip p50: <1 better)\n", os.Args[3], os.Args[4], rounds)
	fmt.Printf("%-26s %14s %14s %8s  %s\n", "case", "old", "new", "new/old", "probe ns old/new per round")
	for _, name := range names {
		s := all[name]
		unit := "M/s"
		o, n := median(s.old)/1e6, median(s.new)/1e6
		if s.latency {
			unit = "ns p50"
			o, n = median(s.old), median(s.new)
		}
		fmt.Printf("%-26s %9.2f %-4s %9.2f %-4s %8.3f  %v\n", name, o, unit, n, unit, median(s.ratio), s.probes)
	}
	printPeers(all)
}

// peers are the ratios that judge shmring against its peers (issue 17's
// goals), each taken within one run of one side, so that old and new are
// each judged against the peer that ran beside them.
var peers = []struct {
	what, a, b string
	cost       bool // a and b are rates: b/a, the cost ratio (time a message)
}{
	{"one-core cost, one at a time / C loop", "shmring-1core", "c-1core", true},
	{"one-core cost, batched / C loop", "shmring-1core-batch64", "c-1core-batch64", true},
	{"one-core cost, range loop / C loop", "shmring-1core-iter64", "c-1core-batch64", true},
	{"SPSC / C ring (throughput)", "shmring-spsc", "c-ring", false},
	{"SPSC batch64 / C ring batch64", "shmring-spsc-batch64", "c-ring-batch64", false},
	{"SPSC / Go channel", "shmring-spsc", "go-chan", false},
	{"MPSC 4p / Go channel, 4 senders", "shmring-mpsc-4p", "go-chan-4g", false},
	{"MPSC 4p batch64 / Go channel, 4 senders", "shmring-mpsc-4p-batch64", "go-chan-4g", false},
	{"spin round trip / C ring's", "shmring-spin", "c-ring-spin", false},
	{"park round trip / futex", "shmring-park", "futex", false},
	{"park round trip / C park", "shmring-park", "c-park", false},
}

// printPeers prints, for each pair of peers present on both sides, the
// median (and range) over rounds of a/b per side: for rates the cost
// ratio b/a when cost is set, else a/b; for round trips a/b. A cost or a
// round trip is better lower, a throughput higher.
func printPeers(all map[string]*series) {
	printed := false
	for _, pr := range peers {
		a, b := all[pr.a], all[pr.b]
		if a == nil || b == nil || a.latency != b.latency || len(a.old) != len(b.old) {
			continue
		}
		if !printed {
			fmt.Println("\nagainst the peers, per side: median (min - max) over rounds of each round's ratio")
			fmt.Printf("%-42s %24s %24s\n", "ratio", "old", "new")
			printed = true
		}
		ratios := func(x, y []float64) string {
			r := make([]float64, len(x))
			for i := range x {
				if pr.cost {
					r[i] = y[i] / x[i]
				} else {
					r[i] = x[i] / y[i]
				}
			}
			return fmt.Sprintf("%.2fx (%.2f - %.2f)", median(r), slices.Min(r), slices.Max(r))
		}
		fmt.Printf("%-42s %24s %24s\n", pr.what, ratios(a.old, b.old), ratios(a.new, b.new))
	}
}
