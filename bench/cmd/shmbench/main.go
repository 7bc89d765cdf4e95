// Command shmbench compares shmring with a Go buffered channel and a Unix
// domain socket, interleaved in rounds so that machine drift hits every case
// alike, and reports each round and the per-round ratios.
//
//	go run ./bench/cmd/shmbench [--rounds 5] [--messages 4000000] [--json] [--quick]
//	go run ./bench/cmd/shmbench --check-json FILE
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shmring/shmring/bench"
)

type roundResult struct {
	Round int                `json:"round"`
	Rates map[string]float64 `json:"msgs_per_sec"`
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
	Ratios   map[string]float64 `json:"median_ratios"` // "case/peer": median of per-round ratios
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
	check := flag.String("check-json", "", "validate a JSON report written by --json and exit")
	flag.Parse()
	if *check != "" {
		if err := checkJSON(*check); err != nil {
			fmt.Fprintln(os.Stderr, "shmbench:", err)
			os.Exit(1)
		}
		fmt.Println("shmbench: report ok:", *check)
		return
	}
	if *quick {
		*rounds, *messages = 1, 100_000
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "shmbench:", err)
		os.Exit(1)
	}
	rep := report{Machine: cpuModel(), CPUs: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC(),
		Messages: *messages, Size: 64, Median: map[string]float64{}, Ratios: map[string]float64{}}
	cases := bench.Cases()
	progress := func(format string, a ...any) {}
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		progress = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "\r\033[K"+format, a...) }
	}
	for i := 1; i <= *rounds; i++ {
		rr := roundResult{Round: i, Rates: map[string]float64{}}
		for _, c := range cases {
			progress("shmbench: round %d/%d, %s", i, *rounds, c.Name)
			rate, err := c.Run(exe, *messages, 64)
			if err != nil {
				fmt.Fprintln(os.Stderr, "\nshmbench:", err)
				os.Exit(1)
			}
			rr.Rates[c.Name] = rate
		}
		rep.Rounds = append(rep.Rounds, rr)
	}
	progress("")
	for _, c := range cases {
		var v []float64
		for _, r := range rep.Rounds {
			v = append(v, r.Rates[c.Name])
		}
		rep.Median[c.Name] = median(v)
	}
	for _, q := range bench.Ratios() {
		var v []float64
		for _, r := range rep.Rounds {
			v = append(v, r.Rates[q.Case]/r.Rates[q.Peer])
		}
		rep.Ratios[q.Case+"/"+q.Peer] = median(v)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	printTable(rep, cases)
}

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

func printTable(rep report, cases []bench.Case) {
	fmt.Printf("%d messages of %d B per case per round; %s, %d CPUs, %s\n\n", rep.Messages, rep.Size, rep.Machine, rep.CPUs, rep.Go)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "case (processes)\t")
	for _, r := range rep.Rounds {
		fmt.Fprintf(tw, "round %d\t", r.Round)
	}
	fmt.Fprint(tw, "median\t\n")
	for _, c := range cases {
		fmt.Fprintf(tw, "%s (%d)\t", c.Name, c.Procs)
		for _, r := range rep.Rounds {
			fmt.Fprintf(tw, "%.2f M/s\t", r.Rates[c.Name]/1e6)
		}
		fmt.Fprintf(tw, "%.2f M/s\t\n", rep.Median[c.Name]/1e6)
	}
	_ = tw.Flush()
	fmt.Println("\nratios, round by round, then the median:")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, q := range bench.Ratios() {
		fmt.Fprintf(tw, "%s / %s\t", q.Case, q.Peer)
		for _, r := range rep.Rounds {
			fmt.Fprintf(tw, "%.2fx\t", r.Rates[q.Case]/r.Rates[q.Peer])
		}
		fmt.Fprintf(tw, "%.2fx\t\n", rep.Ratios[q.Case+"/"+q.Peer])
	}
	_ = tw.Flush()
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

func checkJSON(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(rep.Rounds) == 0 || rep.Messages == 0 {
		return fmt.Errorf("%s: no rounds", path)
	}
	for _, c := range bench.Cases() {
		if !(rep.Median[c.Name] > 0) {
			return fmt.Errorf("%s: no positive rate for %s", path, c.Name)
		}
	}
	return nil
}
