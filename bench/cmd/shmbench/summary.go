package main

import "github.com/shmring/shmring/bench"

// summarize fills the report's medians and ratios from its rounds: over
// every round (ratios: over the rounds that ran the case and its peer in
// the same state; cost ratios: over every round) and, in ByState, over
// each state's rounds alone.
func summarize(rep *report, cases []bench.Case) {
	rep.MedianCPU = map[string]float64{}
	rep.OneCore = map[string]float64{}
	for _, c := range cases {
		rep.Median[c.Name] = medianOf(rep, c.Name, "", func(r roundResult) float64 { return r.Rates[c.Name] })
		rep.MedianCPU[c.Name] = medianOf(rep, c.Name, "", func(r roundResult) float64 { return r.CPU[c.Name] })
		if bench.OneCore(c.Name) {
			if m := rep.Median[c.Name]; m > 0 {
				rep.OneCore[c.Name] = 1e9 / m
			}
		}
	}
	rep.Ratios, rep.RatioRounds = sameStateRatios(*rep, bench.Ratios(), "")
	rep.CostRatios, rep.CostRatioRounds = costRatios(*rep, "")
	rep.ByState = map[string]stateSummary{}
	for _, st := range []string{"fast", "slow"} {
		s := stateSummary{Median: map[string]float64{}, CPU: map[string]float64{}}
		for _, c := range cases {
			if m := medianOf(rep, c.Name, st, func(r roundResult) float64 { return r.Rates[c.Name] }); m > 0 {
				s.Median[c.Name] = m
				s.CPU[c.Name] = medianOf(rep, c.Name, st, func(r roundResult) float64 { return r.CPU[c.Name] })
			}
		}
		s.Ratios, s.RatioRounds = sameStateRatios(*rep, bench.Ratios(), st)
		s.CostRatios, s.CostRatioRounds = costRatios(*rep, st)
		s.LatRatios, s.LatRatioRounds = latRatios(*rep, st)
		rep.ByState[st] = s
	}
}

// medianOf is the median of f over the rounds in which the case ran (a
// positive value) in state st ("": any state).
func medianOf(rep *report, name, st string, f func(roundResult) float64) float64 {
	var v []float64
	for _, r := range rep.Rounds {
		if x := f(r); x > 0 && (st == "" || r.state(name, rep.ProbeFloor) == st) {
			v = append(v, x)
		}
	}
	return median(v)
}

// sameStateRatios computes, for each of ratios that ran, the median of its
// per-round ratios over the rounds that ran the case and its peer in the
// same machine state (st: in that state only), and how many rounds those
// were.
func sameStateRatios(rep report, ratios []bench.Ratio, st string) (map[string]float64, map[string]int) {
	out, rounds := map[string]float64{}, map[string]int{}
	for _, q := range ratios {
		var v []float64
		ran := false
		for _, r := range rep.Rounds {
			if r.Rates[q.Case] > 0 && r.Rates[q.Peer] > 0 {
				ran = true
				a, b := r.state(q.Case, rep.ProbeFloor), r.state(q.Peer, rep.ProbeFloor)
				if sameState(a, b) && (st == "" || a == st) {
					v = append(v, r.Rates[q.Case]/r.Rates[q.Peer])
				}
			}
		}
		if ran {
			rounds[q.Case+"/"+q.Peer] = len(v)
		}
		if len(v) > 0 {
			out[q.Case+"/"+q.Peer] = median(v)
		}
	}
	return out, rounds
}

// costRatios computes, for each of bench.CostRatios that ran, the median
// of its per-round cost ratios (the case's cost per message over its
// peer's) over every round (st ""), or over the rounds that ran both in
// state st.
func costRatios(rep report, st string) (map[string]float64, map[string]int) {
	out, rounds := map[string]float64{}, map[string]int{}
	for _, q := range bench.CostRatios() {
		var v []float64
		ran := false
		for _, r := range rep.Rounds {
			if r.Rates[q.Case] > 0 && r.Rates[q.Peer] > 0 {
				ran = true
				a, b := r.state(q.Case, rep.ProbeFloor), r.state(q.Peer, rep.ProbeFloor)
				if st == "" || (a == st && b == st) {
					v = append(v, r.Rates[q.Peer]/r.Rates[q.Case])
				}
			}
		}
		if ran {
			rounds[q.Case+"/"+q.Peer] = len(v)
		}
		if len(v) > 0 {
			out[q.Case+"/"+q.Peer] = median(v)
		}
	}
	return out, rounds
}

// latRatios is sameStateRatios for the latency cases' p50s.
func latRatios(rep report, st string) (map[string]float64, map[string]int) {
	out, rounds := map[string]float64{}, map[string]int{}
	for _, q := range latencyRatios {
		a, b := rep.Latency[q[0]], rep.Latency[q[1]]
		if len(a) == 0 || len(b) == 0 {
			continue
		}
		var v []float64
		for i := range min(len(a), len(b)) {
			sa, sb := a[i].state(rep.ProbeFloor), b[i].state(rep.ProbeFloor)
			if sameState(sa, sb) && (st == "" || sa == st) {
				v = append(v, float64(a[i].P50)/float64(b[i].P50))
			}
		}
		rounds[q[0]+"/"+q[1]] = len(v)
		if len(v) > 0 {
			out[q[0]+"/"+q[1]] = median(v)
		}
	}
	return out, rounds
}
