package main

import "testing"

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
	ratios, rounds := sameStateRatios(rep)
	if rounds["shmring-spsc/c-ring"] != 2 || ratios["shmring-spsc/c-ring"] != 1.1 {
		t.Fatalf("ratio %v over %d rounds, want 1.1 over 2", ratios["shmring-spsc/c-ring"], rounds["shmring-spsc/c-ring"])
	}
}
