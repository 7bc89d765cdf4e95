package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

type lsEntry struct {
	Name             string  `json:"name"`
	Kind             string  `json:"kind,omitempty"`
	Capacity         uint64  `json:"capacity_bytes,omitempty"`
	DepthPercent     float64 `json:"depth_percent"`
	Producers        int     `json:"producers_attached"`
	ConsumerAttached bool    `json:"consumer_attached"`
	Drops            uint64  `json:"drops"`
	Error            string  `json:"error,omitempty"`
	// Damage is what ops.Validate found wrong with a readable ring's
	// words (its consumer would fail with ErrCorrupt).
	Damage string `json:"damage,omitempty"`
	// A temporary file of a create: TemporaryOf names the ring it was for;
	// CreatorAlive says whether that create still runs (else it is the
	// leftover of a killed one, which doctor --repair removes).
	TemporaryOf  string `json:"temporary_of,omitempty"`
	CreatorAlive *bool  `json:"creator_alive,omitempty"`
}

func runLs(sio stdio, args []string) error {
	fs := newFlags(sio, "ls")
	dir := fs.String("dir", "", "directory to list (default $SHMRING_DIR or /dev/shm)")
	trust := fs.Bool("trust-owner", false, "read rings owned by other users")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	d, opts := dirAndTrust(*dir, *trust)
	rings, err := ops.List(d, opts...)
	if err != nil {
		return err
	}
	out := []lsEntry{}
	for _, ri := range rings {
		e := lsEntry{Name: ri.Name}
		if ri.Creating {
			alive := ri.CreatorAlive
			e.TemporaryOf, e.CreatorAlive = ri.Ring, &alive
		}
		if ri.Err != nil {
			e.Error = ri.Err.Error()
		} else if !ri.Creating {
			st := ri.Stats
			if ri.Damage != nil {
				e.Damage = ri.Damage.Error()
			}
			e.Kind, e.Capacity, e.Drops, e.ConsumerAttached = string(st.Kind), st.Capacity, st.Drops, st.ConsumerAttached
			e.DepthPercent = 100 * float64(st.Depth) / float64(st.Capacity)
			if st.Kind == ipc.SPSC {
				if st.ProducerAttached {
					e.Producers = 1
				}
			} else {
				for _, p := range st.Producers {
					if p.Alive {
						e.Producers++
					}
				}
			}
		}
		out = append(out, e)
	}
	if *asJSON {
		enc := json.NewEncoder(sio.out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	dirFlag := ""
	if *dir != "" {
		dirFlag = " --dir " + show(*dir)
	}
	tw := tabwriter.NewWriter(sio.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSIZE\tDEPTH\tPRODUCERS\tCONSUMER\tDROPS")
	for _, e := range out {
		switch {
		case e.TemporaryOf != "" && e.Error != "":
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t(temporary file of a create of %s; cannot tell whether its creator runs: %s)\n", show(e.Name), show(e.TemporaryOf), e.Error)
			continue
		case e.TemporaryOf != "" && *e.CreatorAlive:
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t(being created: %s appears when its creator finishes)\n", show(e.Name), show(e.TemporaryOf))
			continue
		case e.TemporaryOf != "":
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t(leftover of a create of %s that was killed; 'ringctl doctor %s%s --repair' removes it)\n", show(e.Name), show(e.TemporaryOf), show(e.TemporaryOf), dirFlag)
			continue
		case e.Error != "":
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t(unreadable: %s)\n", show(e.Name), e.Error)
			continue
		}
		damage := ""
		if e.Damage != "" {
			damage = fmt.Sprintf("\t(damaged: %s; 'ringctl doctor %s%s' says more)", e.Damage, show(e.Name), dirFlag)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f%%\t%d\t%s\t%d%s\n", show(e.Name), e.Kind, units.FormatSize(e.Capacity), e.DepthPercent, e.Producers, yesNo(e.ConsumerAttached), e.Drops, damage)
	}
	return tw.Flush()
}
