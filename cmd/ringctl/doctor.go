package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/shm"
)

type doctorReport struct {
	Path     string   `json:"path"`
	Exists   bool     `json:"exists"`
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems"`
	// Notes: what doctor saw that is not wrong in itself (ops.Diagnosis.Notes).
	Notes         []string `json:"notes"`
	DeadProducers []int    `json:"dead_producer_slots"`
	Stuck         bool     `json:"stuck"`
	Pending       int      `json:"messages_pending"`
	Repaired      int      `json:"repaired"`
	// Damaged: the ring's words or records are inconsistent (ops.Diagnosis.Damaged).
	Damaged bool `json:"damaged"`
	// Behind: bytes reserved past the uncommitted reservation at
	// position Waiting where the walk stopped (ops.Diagnosis).
	Waiting uint64 `json:"waiting_at,omitempty"`
	Behind  uint64 `json:"bytes_behind_reservation,omitempty"`
	// Stalled: the consumer waits at a live producer's reservation that
	// did not move (slot StalledSlot).
	Stalled     bool             `json:"stalled"`
	StalledSlot *int             `json:"stalled_slot,omitempty"`
	Leftovers   []leftoverReport `json:"leftovers"`
	// Doorbell is the doorbell file line 15 names (a ring with flag bit
	// 4 that a wait set consumes or consumed), if any.
	Doorbell *doorbellReport `json:"doorbell,omitempty"`
}

// doorbellReport is the doorbell file line 15 of a ring names: the wait
// set's that holds the consumer role, or a dead set's.
type doorbellReport struct {
	Path    string `json:"path"`
	Alive   bool   `json:"alive"` // its set holds its lock
	Exists  bool   `json:"exists"`
	Removed bool   `json:"removed"`
}

// leftoverReport is a temporary file of a create of the ring: a create in
// progress (its creator alive) or the leftover of a killed one.
type leftoverReport struct {
	Path         string `json:"path"`
	Bytes        int64  `json:"bytes"`
	CreatorAlive bool   `json:"creator_alive"`
	Removed      bool   `json:"removed"`
	Error        string `json:"error,omitempty"`
}

// runDoctor validates a ring and reports dead producers, stuck reservations
// and the temporary files a killed create left; --repair skips the dead
// reservations that block the ring and removes those files once their
// creator is dead.
func runDoctor(sio stdio, args []string) error {
	fs := newFlags(sio, "doctor")
	var loc location
	loc.register(fs)
	repair := fs.Bool("repair", false, "skip reservations of dead producers that block the ring (takes the consumer role if free); remove what a killed create left")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	rep := doctorReport{Problems: []string{}, Notes: []string{}, DeadProducers: []int{}, Leftovers: []leftoverReport{}}
	removed := checkLeftovers(&rep, pos[0], loc.shmOptions(), *repair)

	opts := loc.options()
	if !*repair {
		opts = append(opts, ipc.WithReadOnly())
	}
	r, err := ipc.Open(pos[0], opts...)
	switch {
	case errors.Is(err, os.ErrNotExist) && len(rep.Leftovers) > 0:
		// Only the traces of its create: report them.
		rep.Path, _ = shm.Resolve(pos[0], loc.shmOptions()...)
		rep.Problems = append(rep.Problems, "the ring does not exist: its create never finished")
	case err != nil:
		return err
	default:
		defer r.Close()
		d, err := ops.Doctor(r, *repair)
		if err != nil {
			return err
		}
		rep.Path, rep.Exists = r.Path(), true
		rep.Problems = append(rep.Problems, d.Problems...)
		rep.Notes = append(rep.Notes, d.Notes...)
		rep.DeadProducers = append(rep.DeadProducers, d.DeadProducers...)
		rep.Stuck, rep.Pending, rep.Repaired = d.Stuck, d.Pending, d.Repaired
		rep.Damaged, rep.Waiting, rep.Behind, rep.Stalled = d.Damaged, d.Waiting, d.Behind, d.Stalled
		if d.Stalled {
			rep.StalledSlot = &d.StalledSlot
		}
		if checkDoorbell(&rep, r, *repair) {
			removed++
		}
	}
	rep.Healthy = len(rep.Problems) == 0
	if *asJSON {
		enc := json.NewEncoder(sio.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printDoctor(sio, rep, *repair)
	}
	if !rep.Healthy && (rep.Damaged || !(*repair && (rep.Repaired > 0 || removed > 0))) {
		return errSilentFailure
	}
	return nil
}

// checkLeftovers adds to rep the temporary files of creates of the ring
// name, removing those of dead creators if repair (never one whose creator
// runs), and returns how many it removed. What is left of a dead create is
// a problem; a create in progress is not.
func checkLeftovers(rep *doctorReport, name string, opts []shm.Option, repair bool) (removed int) {
	lefts, err := shm.Leftovers(name, opts...)
	if err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("cannot look for leftovers of an interrupted create: %v", err))
		return 0
	}
	for _, l := range lefts {
		lr := leftoverReport{Path: l.Path, Bytes: l.Size, CreatorAlive: l.CreatorAlive}
		switch {
		case l.Err != nil:
			lr.Error = l.Err.Error()
			rep.Problems = append(rep.Problems, fmt.Sprintf("temporary file %s of a create: cannot tell whether its creator runs: %v", show(l.Path), l.Err))
		case l.CreatorAlive:
			// A create in progress: not a problem, and never removed.
		case repair:
			if err := shm.RemoveLeftover(l.Path); err != nil {
				lr.Error = err.Error()
				if errors.Is(err, shm.ErrBusy) {
					lr.CreatorAlive = true // it came back to life: a create that just began
					continue
				}
				rep.Problems = append(rep.Problems, fmt.Sprintf("could not remove the leftover %s: %v", show(l.Path), err))
			} else {
				lr.Removed = true
				removed++
			}
		default:
			rep.Problems = append(rep.Problems, fmt.Sprintf("leftover of a create killed before it published the ring: %s (%d bytes); 'ringctl doctor --repair' removes it", show(l.Path), l.Size))
		}
		rep.Leftovers = append(rep.Leftovers, lr)
	}
	return removed
}

// checkDoorbell adds to rep the doorbell file that line 15 of a ring with
// flag bit 4 names, and whether its wait set lives; a dead set's doorbell
// is a problem, removed if repair (the id in line 15 is cleared by the
// next consumer that takes the role). It reports whether it removed one.
func checkDoorbell(rep *doctorReport, r *ipc.Ring, repair bool) bool {
	st, err := r.Stats()
	if err != nil || !st.Doorbell || st.DoorbellID == 0 {
		return false
	}
	path := filepath.Join(filepath.Dir(r.Path()), shm.DoorbellName(st.DoorbellID))
	d := &doorbellReport{Path: path}
	rep.Doorbell = d
	if _, err := os.Lstat(path); err != nil {
		if !st.ConsumerAttached {
			rep.Problems = append(rep.Problems, fmt.Sprintf("line 15 names the doorbell %s, which does not exist, and no consumer holds the role: a dead wait set's id; the next consumer clears it", show(path)))
		}
		return false
	}
	d.Exists = true
	alive, err := shm.DoorbellAlive(path)
	d.Alive = alive
	switch {
	case err != nil:
		rep.Problems = append(rep.Problems, fmt.Sprintf("doorbell %s: cannot tell whether its wait set runs: %v", show(path), err))
	case alive:
	case repair:
		if err := shm.RemoveDoorbellLeftover(path); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("could not remove the dead wait set's doorbell %s: %v", show(path), err))
			return false
		}
		d.Removed = true
		return true
	default:
		rep.Problems = append(rep.Problems, fmt.Sprintf("doorbell %s, named by line 15, is a dead wait set's (its lock is free); 'ringctl doctor --repair' removes it, the next consumer clears line 15", show(path)))
	}
	return false
}

func printDoctor(sio stdio, rep doctorReport, repair bool) {
	switch {
	case rep.Exists && rep.Damaged:
		fmt.Fprintf(sio.out, "%s: header and descriptor valid; the ring's words or records are damaged (below)\n", show(rep.Path))
	case rep.Exists && rep.Behind > 0:
		fmt.Fprintf(sio.out, "%s: header, descriptor and positions valid; %d messages readable, then an uncommitted reservation at position %d with %d bytes reserved behind it\n", show(rep.Path), rep.Pending, rep.Waiting, rep.Behind)
	case rep.Exists:
		fmt.Fprintf(sio.out, "%s: header, descriptor and positions valid; %d messages pending\n", show(rep.Path), rep.Pending)
	default:
		fmt.Fprintf(sio.out, "%s: no such ring\n", show(rep.Path))
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(sio.out, "  problem: %s\n", p)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(sio.out, "  note: %s\n", n)
	}
	for _, l := range rep.Leftovers {
		switch {
		case l.Removed:
			fmt.Fprintf(sio.out, "  repaired: removed %s, left by a killed create\n", show(l.Path))
		case l.CreatorAlive && l.Error == "":
			fmt.Fprintf(sio.out, "  being created: %s (its creator is running; left alone)\n", show(l.Path))
		case l.CreatorAlive:
			fmt.Fprintf(sio.out, "  left alone: %s: %s\n", show(l.Path), l.Error)
		}
	}
	if d := rep.Doorbell; d != nil && d.Removed {
		fmt.Fprintf(sio.out, "  repaired: removed %s, a dead wait set's doorbell\n", show(d.Path))
	} else if d != nil && d.Alive {
		fmt.Fprintf(sio.out, "  doorbell: %s (its wait set is running)\n", show(d.Path))
	}
	if len(rep.DeadProducers) > 0 {
		fmt.Fprintf(sio.out, "  dead producer slots (free to reclaim): %v\n", rep.DeadProducers)
	}
	if rep.Damaged && repair {
		fmt.Fprintln(sio.out, "  cannot repair a damaged ring: stop every process using it, then remove and recreate it (ringctl rm NAME); the messages in it cannot be trusted")
	} else if rep.Damaged {
		fmt.Fprintln(sio.out, "  a damaged ring cannot be repaired: stop every process using it, then remove and recreate it (ringctl rm NAME); the messages in it cannot be trusted")
	} else if repair && rep.Exists {
		fmt.Fprintf(sio.out, "  repaired: skipped %d dead reservations (counted in lost)\n", rep.Repaired)
	} else if rep.Stuck {
		fmt.Fprintln(sio.out, "  run 'ringctl doctor --repair' (or start a consumer) to skip it")
	}
	if rep.Healthy {
		fmt.Fprintln(sio.out, "  healthy")
	}
}
