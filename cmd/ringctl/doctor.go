package main

import (
	"encoding/json"
	"fmt"

	"github.com/shmring/shmring/ipc"
)

type doctorReport struct {
	Path          string   `json:"path"`
	Healthy       bool     `json:"healthy"`
	Problems      []string `json:"problems"`
	DeadProducers []int    `json:"dead_producer_slots"`
	Stuck         bool     `json:"stuck"`
	Pending       int      `json:"messages_pending"`
	Repaired      int      `json:"repaired"`
}

// runDoctor validates a ring and reports dead producers and stuck
// reservations; --repair skips the dead reservations that block it.
func runDoctor(sio stdio, args []string) error {
	fs := newFlags(sio, "doctor")
	var loc location
	loc.register(fs)
	repair := fs.Bool("repair", false, "skip reservations of dead producers that block the ring (takes the consumer role if free)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	opts := loc.options()
	if !*repair {
		opts = append(opts, ipc.WithReadOnly())
	}
	r, err := ipc.Open(pos[0], opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	d, err := r.Doctor(*repair)
	if err != nil {
		return err
	}
	rep := doctorReport{Path: r.Path(), Healthy: d.Healthy(), Problems: d.Problems, DeadProducers: d.DeadProducers,
		Stuck: d.Stuck, Pending: d.Pending, Repaired: d.Repaired}
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	if rep.DeadProducers == nil {
		rep.DeadProducers = []int{}
	}
	if *asJSON {
		enc := json.NewEncoder(sio.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(sio.out, "%s: header, descriptor and positions valid; %d messages pending\n", rep.Path, rep.Pending)
		for _, p := range rep.Problems {
			fmt.Fprintf(sio.out, "  problem: %s\n", p)
		}
		if len(rep.DeadProducers) > 0 {
			fmt.Fprintf(sio.out, "  dead producer slots (free to reclaim): %v\n", rep.DeadProducers)
		}
		if *repair {
			fmt.Fprintf(sio.out, "  repaired: skipped %d dead reservations (counted in lost)\n", rep.Repaired)
		} else if rep.Stuck {
			fmt.Fprintln(sio.out, "  run 'ringctl doctor --repair' (or start a consumer) to skip it")
		}
		if rep.Healthy {
			fmt.Fprintln(sio.out, "  healthy")
		}
	}
	if !rep.Healthy && !(*repair && rep.Repaired > 0) {
		return errSilentFailure
	}
	return nil
}
