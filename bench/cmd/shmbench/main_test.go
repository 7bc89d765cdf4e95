package main

import (
	"slices"
	"testing"

	"github.com/shmring/shmring/bench"
	"github.com/stretchr/testify/require"
)

func TestStateOf(t *testing.T) {
	const floor = 110
	for _, tc := range []struct {
		before, after int64
		want          string
	}{
		{120, 130, "fast"},
		{330, 110, "fast"}, // three times the floor is still fast
		{470, 480, "slow"},
		{120, 470, "mixed"},
		{480, 111, "mixed"},
		{0, 120, ""}, // not probed: compares with anything of its kind
	} {
		if got := stateOf(tc.before, tc.after, floor); got != tc.want {
			t.Errorf("stateOf(%d, %d, %d) = %q, want %q", tc.before, tc.after, floor, got, tc.want)
		}
	}
	if got := stateOf(120, 130, 0); got != "" {
		t.Errorf("no floor: %q", got)
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"fast", "fast", true}, {"slow", "slow", true}, {"fast", "slow", false}, {"mixed", "mixed", false}, {"", "", true}} {
		if got := sameState(tc.a, tc.b); got != tc.want {
			t.Errorf("sameState(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// TestRatiosSameState: a round whose case and peer ran in different
// states is left out of the median, and counted out of ratio_rounds.
func TestRatiosSameState(t *testing.T) {
	r := func(a, b float64, pa, pb int64) roundResult {
		return roundResult{Rates: map[string]float64{"shmring-spsc": a, "c-ring": b},
			Probe: map[string]int64{"shmring-spsc": pa, "c-ring": pb}, ProbeAfter: map[string]int64{"shmring-spsc": pa, "c-ring": pb}}
	}
	rep := report{Rounds: []roundResult{r(10, 10, 110, 120), r(30, 10, 110, 470), r(12, 10, 120, 115)}}
	rep.ProbeFloor = probeFloor(rep)
	ratios, rounds := sameStateRatios(rep, bench.Ratios(), "")
	if rounds["shmring-spsc/c-ring"] != 2 || ratios["shmring-spsc/c-ring"] != 1.1 {
		t.Fatalf("ratio %v over %d rounds, want 1.1 over 2", ratios["shmring-spsc/c-ring"], rounds["shmring-spsc/c-ring"])
	}
}

// TestSummarizeByState: each state's medians and ratios are over its own
// rounds; the one-core cost ratio is over every round, inverted (ns over
// ns), and per state too; CPU per message has a median for every case.
func TestSummarizeByState(t *testing.T) {
	names := []string{"shmring-spsc", "c-ring", "shmring-1core", "c-1core"}
	r := func(spsc, cring, one, c1 float64, probe int64) roundResult {
		rr := roundResult{Rates: map[string]float64{}, Probe: map[string]int64{}, ProbeAfter: map[string]int64{}, CPU: map[string]float64{}}
		for i, v := range []float64{spsc, cring, one, c1} {
			rr.Rates[names[i]], rr.Probe[names[i]], rr.ProbeAfter[names[i]], rr.CPU[names[i]] = v, probe, probe, 0.1*float64(i+1)
		}
		return rr
	}
	// fast rounds: spsc 1.1x and 1.3x the C ring; slow: 0.9x. One-core:
	// shmring at 25 M/s (40 ns) against C at 50 M/s (20 ns): 2x the cost.
	rep := report{Rounds: []roundResult{r(11, 10, 25e6, 50e6, 100), r(13, 10, 25e6, 50e6, 110), r(9, 10, 20e6, 50e6, 500)},
		Median: map[string]float64{}}
	rep.ProbeFloor = probeFloor(rep)
	var cases []bench.Case
	for _, c := range bench.Cases() {
		if slices.Contains(names, c.Name) {
			cases = append(cases, c)
		}
	}
	summarize(&rep, cases)
	fast, slow := rep.ByState["fast"], rep.ByState["slow"]
	require.InDelta(t, 1.2, fast.Ratios["shmring-spsc/c-ring"], 1e-9)
	require.Equal(t, 2, fast.RatioRounds["shmring-spsc/c-ring"])
	require.InDelta(t, 0.9, slow.Ratios["shmring-spsc/c-ring"], 1e-9)
	require.Equal(t, 1, slow.RatioRounds["shmring-spsc/c-ring"])
	require.InDelta(t, 1.1, rep.Ratios["shmring-spsc/c-ring"], 1e-9)
	require.InDelta(t, 12, fast.Median["shmring-spsc"], 1e-9)
	require.InDelta(t, 9, slow.Median["shmring-spsc"], 1e-9)
	require.InDelta(t, 2, rep.CostRatios["shmring-1core/c-1core"], 1e-9)
	require.Equal(t, 3, rep.CostRatioRounds["shmring-1core/c-1core"])
	require.InDelta(t, 2.5, slow.CostRatios["shmring-1core/c-1core"], 1e-9)
	require.InDelta(t, 40, rep.OneCore["shmring-1core"], 1e-9)
	for i, n := range names {
		require.InDelta(t, 0.1*float64(i+1), rep.MedianCPU[n], 1e-9, n)
	}
}
