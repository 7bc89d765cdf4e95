package bench

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

//go:embed cring/cring.c
var cringSource []byte

// ErrSkipped is returned by a case that cannot run on this machine (the C
// reference without a C compiler); the harness reports it and goes on.
var ErrSkipped = errors.New("skipped")

var (
	cringOnce sync.Once
	cringBin  string
	cringErr  error
)

// cring compiles the C reference ring once per run with the machine's cc.
func cring() (string, error) {
	cringOnce.Do(func() {
		cc, err := exec.LookPath("cc")
		if err != nil {
			cringErr = fmt.Errorf("no C compiler (cc) on PATH: %w", ErrSkipped)
			return
		}
		dir, err := os.MkdirTemp("", "shmbench-cring-")
		if err != nil {
			cringErr = err
			return
		}
		src := filepath.Join(dir, "cring.c")
		if err := os.WriteFile(src, cringSource, 0o600); err != nil {
			cringErr = err
			return
		}
		bin := filepath.Join(dir, "cring")
		if out, err := exec.Command(cc, "-O2", "-o", bin, src).CombinedOutput(); err != nil {
			cringErr = fmt.Errorf("cc: %v: %s: %w", err, out, ErrSkipped)
			return
		}
		cringBin = bin
	})
	return cringBin, cringErr
}

// cringCase is the C reference SPSC ring, publishing every batch messages.
func cringCase(batch int) func(string, uint64, uint64) (time.Duration, error) {
	return func(_ string, n, size uint64) (time.Duration, error) {
		if size != 64 {
			return 0, fmt.Errorf("the C ring has 64-byte slots: %w", ErrSkipped)
		}
		bin, err := cring()
		if err != nil {
			return 0, err
		}
		out, err := exec.Command(bin, strconv.FormatUint(n, 10), strconv.Itoa(batch)).Output()
		if err != nil {
			return 0, fmt.Errorf("cring: %w", err)
		}
		var rate float64
		var cpu int64
		if _, err := fmt.Sscan(string(out), &rate, &cpu); err != nil || rate <= 0 {
			return 0, fmt.Errorf("cring said %q", out)
		}
		cpuUsed = time.Duration(cpu)
		return time.Duration(float64(n) / rate * 1e9), nil
	}
}

// cringLatency is a C round trip between two forked processes: mode "-rt"
// ping-pongs a word spinning; "-hrt" a word, spinning spins pauses and then
// sleeping on a futex (0: sleeping at once); "-rrt" a 64-byte message
// through two rings, spinning (spins < 0) or spinning then sleeping.
func cringLatency(mode string, spins int) func(string, int) (LatencyResult, error) {
	return func(_ string, n int) (LatencyResult, error) {
		bin, err := cring()
		if err != nil {
			return LatencyResult{}, err
		}
		args := []string{mode, strconv.Itoa(n)}
		if mode != "-rt" {
			args = append(args, strconv.Itoa(spins))
		}
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			return LatencyResult{}, fmt.Errorf("cring: %w", err)
		}
		var p50, p99, p999, mx, cpu int64
		if _, err := fmt.Sscan(string(out), &p50, &p99, &p999, &mx, &cpu); err != nil {
			return LatencyResult{}, fmt.Errorf("cring said %q", out)
		}
		return LatencyResult{N: n, P50: time.Duration(p50), P99: time.Duration(p99), P999: time.Duration(p999),
			Max: time.Duration(mx), CPUPerRoundTrip: time.Duration(cpu / int64(max(n, 1)))}, nil
	}
}

// Probe measures the machine's cross-core state: the median round trip of
// a cache line between two processes (the C spin ping-pong, 2000 round
// trips, about a millisecond). The harness runs it before every case, so
// that a result can be read against the state it ran in.
func Probe() (time.Duration, error) {
	l, err := cringLatency("-rt", 0)("", 2000)
	return l.P50, err
}
