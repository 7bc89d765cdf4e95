package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
)

// runWatch refreshes a view of one or more rings in place until Ctrl-C:
// depth bar, rates per second, pressure, drops. --once prints one frame
// (rates over one interval) and exits, for scripts and tests.
func runWatch(sio stdio, args []string) error {
	fs := newFlags(sio, "watch")
	var loc location
	loc.register(fs)
	interval := units.DurationFlag{Value: time.Second}
	fs.Var(&interval, "interval", "refresh every DUR (default 1s)")
	once := fs.Bool("once", false, "print one frame and exit")
	count := fs.Int("count", 0, "stop after N frames (default: until Ctrl-C)")
	asJSON := fs.Bool("json", false, "print each frame as a JSON line (rates per second over the interval)")
	// NAME... : parse with a sentinel count, then take every positional.
	var names []string
	for rest := args; ; {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(names) == 0 {
		return usagef("missing ring NAME")
	}
	if interval.Value <= 0 {
		return usagef("--interval must be positive")
	}
	var rings []*ipc.Ring
	for _, n := range names {
		r, err := ipc.Open(n, append(loc.options(), ipc.WithReadOnly())...)
		if err != nil {
			return err
		}
		defer r.Close()
		rings = append(rings, r)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	prev, err := sample(rings)
	if err != nil {
		return err
	}
	hist := newHistory(len(rings), interval.Value)
	for frame := 1; ; frame++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval.Value):
		}
		cur, err := sample(rings)
		if err != nil {
			return err
		}
		hist.add(prev, cur, interval.Value)
		switch {
		case *asJSON:
			if err := renderJSON(sio, rings, prev, cur, interval.Value); err != nil {
				return err
			}
		default:
			if !*once {
				fmt.Fprint(sio.out, "\033[H\033[2J") // home, clear: refresh in place
			}
			render(sio, rings, prev, cur, interval.Value, !*once && *count == 0)
			if !*once {
				hist.render(sio, rings)
			}
		}
		prev = cur
		if *once || (*count > 0 && frame >= *count) {
			return nil
		}
	}
}

func sample(rings []*ipc.Ring) ([]ipc.Stats, error) {
	out := make([]ipc.Stats, len(rings))
	for i, r := range rings {
		st, err := r.Stats()
		if err != nil {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}

// render prints one frame; untilStopped says that watch runs until Ctrl-C
// (neither --once nor --count), which the header then mentions.
func render(sio stdio, rings []*ipc.Ring, prev, cur []ipc.Stats, dt time.Duration, untilStopped bool) {
	stopHint := ""
	if untilStopped {
		stopHint = " (Ctrl-C to stop)"
	}
	fmt.Fprintf(sio.out, "shmring watch, every %v%s   %s\n\n", dt, stopHint, time.Now().Format("15:04:05"))
	tw := tabwriter.NewWriter(sio.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tDEPTH\t\tIN/s\tOUT/s\tPRESSURE\tDROPS\tDROPS/s\tLOST")
	secs := dt.Seconds()
	for i, r := range rings {
		p, c := prev[i], cur[i]
		frac := float64(c.Depth) / float64(c.Capacity)
		bar := strings.Repeat("#", int(frac*20+0.5)) + strings.Repeat(".", 20-int(frac*20+0.5))
		fmt.Fprintf(tw, "%s\t[%s]\t%5.1f%%\t%.0f\t%.0f\t%s\t%d\t%.0f\t%d\n", show(r.Path()), bar, 100*frac,
			float64(c.MsgsIn-p.MsgsIn)/secs, float64(c.MsgsOut-p.MsgsOut)/secs, pressureName(pressureBits(c.Pressure)),
			c.Drops, float64(c.Drops-p.Drops)/secs, c.Lost)
	}
	_ = tw.Flush()
}

// watchJSON is one ring in a --json frame.
type watchJSON struct {
	Path         string  `json:"path"`
	DepthPercent float64 `json:"depth_percent"`
	InPerSec     float64 `json:"messages_in_per_second"`
	OutPerSec    float64 `json:"messages_out_per_second"`
	Pressure     uint32  `json:"pressure"`
	Drops        uint64  `json:"drops"`
	DropsPerSec  float64 `json:"drops_per_second"`
	Lost         uint64  `json:"lost"`
}

func renderJSON(sio stdio, rings []*ipc.Ring, prev, cur []ipc.Stats, dt time.Duration) error {
	secs := dt.Seconds()
	frame := make([]watchJSON, len(rings))
	for i, r := range rings {
		p, c := prev[i], cur[i]
		frame[i] = watchJSON{Path: r.Path(), DepthPercent: 100 * float64(c.Depth) / float64(c.Capacity),
			InPerSec: float64(c.MsgsIn-p.MsgsIn) / secs, OutPerSec: float64(c.MsgsOut-p.MsgsOut) / secs,
			Pressure: pressureBits(c.Pressure), Drops: c.Drops, DropsPerSec: float64(c.Drops-p.Drops) / secs, Lost: c.Lost}
	}
	return json.NewEncoder(sio.out).Encode(frame)
}
