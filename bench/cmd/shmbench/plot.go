package main

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"time"

	"github.com/shmring/shmring/bench"
	"github.com/shmring/shmring/internal/units"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
}

// writePlot draws two charts into one SVG: throughput by message size for
// the sweep cases, and round-trip latency percentiles for the latency cases.
func writePlot(path string, rep report) error {
	sweep, err := sweepPlot(rep)
	if err != nil {
		return err
	}
	lat, err := latencyPlot(rep)
	if err != nil {
		return err
	}
	const w, h = 22 * vg.Centimeter, 12 * vg.Centimeter
	img := vgsvg.New(w, 2*h)
	dc := draw.New(img)
	top := draw.Crop(dc, 0, 0, h, 0)
	bottom := draw.Crop(dc, 0, 0, 0, -h)
	sweep.Draw(top)
	lat.Draw(bottom)
	return writeSVG(path, img)
}

func sweepPlot(rep report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Throughput by message size, two processes (median of %d rounds)", len(rep.Rounds))
	p.Y.Label.Text = "MiB/s"
	p.X.Label.Text = "message size"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var labels []string
	for _, s := range rep.Sizes {
		labels = append(labels, units.FormatSize(s))
	}
	lo, hi := math.Inf(1), 0.0
	for i, c := range bench.SweepCases() {
		var pts plotter.XYs
		for k, s := range rep.Sizes {
			y := max(rep.SizeMedian[strconv.FormatUint(s, 10)][c.Name]/(1<<20), 0.01)
			lo, hi = min(lo, y), max(hi, y)
			pts = append(pts, plotter.XY{X: float64(k), Y: y})
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = palette[i%len(palette)], palette[i%len(palette)]
		p.Add(line, points)
		p.Legend.Add(c.Name, line, points)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.5, float64(len(labels))-0.5
	logRange(p, lo, hi)
	return p, nil
}

func latencyPlot(rep report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Round trip, 64 B, two processes: p50, p99, p99.9 (median of rounds)"
	p.Y.Label.Text = "µs"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var names []string
	for _, c := range bench.LatencyCases() {
		if _, ok := rep.LatMedian[c.Name]; ok {
			names = append(names, c.Name)
		}
	}
	lo, hi := math.Inf(1), 0.0
	for i, q := range []struct {
		name string
		get  func(latencyJSON) int64
	}{{"p50", func(l latencyJSON) int64 { return l.P50 }}, {"p99", func(l latencyJSON) int64 { return l.P99 }}, {"p99.9", func(l latencyJSON) int64 { return l.P999 }}} {
		var pts plotter.XYs
		for k, n := range names {
			y := max(float64(time.Duration(q.get(rep.LatMedian[n])))/1e3, 0.01)
			lo, hi = min(lo, y), max(hi, y)
			pts = append(pts, plotter.XY{X: float64(k), Y: y})
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.Color = palette[i%len(palette)]
		sc.Shape = draw.CircleGlyph{}
		sc.Radius = vg.Points(4)
		p.Add(sc)
		p.Legend.Add(q.name, sc)
	}
	p.Legend.Top = true
	p.Legend.Left = true // the slowest cases sit at the right
	p.NominalX(names...)
	// Eleven names side by side overlap: slant them.
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YTop
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	logRange(p, lo, hi)
	return p, nil
}

// logRange sets a log axis's range from the data (bars start at zero,
// which a log scale cannot show).
func logRange(p *plot.Plot, lo, hi float64) {
	if math.IsInf(lo, 1) {
		lo, hi = 0.1, 1
	}
	p.Y.Min, p.Y.Max = lo/2, hi*2
}
