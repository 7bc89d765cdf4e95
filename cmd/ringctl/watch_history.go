package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shmring/shmring/ipc"
)

// historySpan is how far back watch's sparklines reach, and historyMax
// the most marks a line has (a shorter --interval covers less).
const (
	historySpan = time.Minute
	historyMax  = 60
)

// history keeps, per ring, the last frames' depth (a fraction of the
// capacity) and in/out rates, for watch's sparklines.
type history struct {
	n              int // marks kept
	every          time.Duration
	depth, in, out [][]float64
}

func newHistory(rings int, interval time.Duration) *history {
	n := int(historySpan / interval)
	n = max(1, min(n, historyMax))
	return &history{n: n, every: interval,
		depth: make([][]float64, rings), in: make([][]float64, rings), out: make([][]float64, rings)}
}

// add records one frame.
func (h *history) add(prev, cur []ipc.Stats, dt time.Duration) {
	secs := dt.Seconds()
	push := func(s []float64, v float64) []float64 {
		s = append(s, v)
		if len(s) > h.n {
			s = s[len(s)-h.n:]
		}
		return s
	}
	for i := range cur {
		p, c := prev[i], cur[i]
		h.depth[i] = push(h.depth[i], float64(c.Depth)/float64(c.Capacity))
		h.in[i] = push(h.in[i], float64(c.MsgsIn-p.MsgsIn)/secs)
		h.out[i] = push(h.out[i], float64(c.MsgsOut-p.MsgsOut)/secs)
	}
}

// render prints a sparkline of depth and of the rates per ring, oldest
// mark first: depth on the scale of the capacity, rates on the scale of
// their largest value in the span, which is printed.
func (h *history) render(sio stdio, rings []*ipc.Ring) {
	fmt.Fprintf(sio.out, "\nhistory, last %v (a mark per %v):\n", time.Duration(h.n)*h.every, h.every)
	tw := tabwriter.NewWriter(sio.out, 0, 0, 2, ' ', 0)
	for i, r := range rings {
		inMax, outMax := maxOf(h.in[i]), maxOf(h.out[i])
		fmt.Fprintf(tw, "%s\tdepth\t%s\t(0-100%%)\n", r.Path(), sparkline(h.depth[i], 1))
		fmt.Fprintf(tw, "\tin/s\t%s\t(max %.0f)\n", sparkline(h.in[i], inMax), inMax)
		fmt.Fprintf(tw, "\tout/s\t%s\t(max %.0f)\n", sparkline(h.out[i], outMax), outMax)
	}
	_ = tw.Flush()
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// sparkBlocks are the marks of a sparkline, lowest first.
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws v on a scale of 0 to top: ▁ for 0 (or a zero top), █
// for top.
func sparkline(v []float64, top float64) string {
	var b strings.Builder
	for _, x := range v {
		k := 0
		if top > 0 {
			k = int(x/top*float64(len(sparkBlocks)-1) + 0.5)
		}
		k = max(0, min(k, len(sparkBlocks)-1))
		b.WriteRune(sparkBlocks[k])
	}
	return b.String()
}
