package main

import (
	"fmt"
	"strings"

	"github.com/shmring/shmring/ipc"
)

func runRm(io stdio, args []string) error {
	fs := newFlags(io, "rm")
	var loc location
	loc.register(fs)
	force := fs.Bool("force", false, "remove the ring even while live processes hold it (they carry on in the removed file, unseen)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if !*force {
		if held := heldRoles(pos[0], loc); held != "" {
			return fmt.Errorf("%s is in use: %s held by live processes, which would carry on in the removed file where no command can see them; stop them first, or pass --force", show(pos[0]), held)
		}
	}
	if err := ipc.Remove(pos[0], loc.options()...); err != nil {
		return err
	}
	fmt.Fprintf(io.out, "removed %s\n", show(pos[0]))
	return nil
}

// heldRoles names the roles of the ring that live processes hold ("the
// consumer and producer slots 0, 2 are"), or "" if none, or if the ring
// cannot be read (then rm goes ahead: a damaged ring must be removable).
func heldRoles(name string, loc location) string {
	r, err := ipc.Open(name, loc.options()...)
	if err != nil {
		return ""
	}
	defer r.Close()
	st, err := r.Stats()
	if err != nil {
		return ""
	}
	var roles []string
	if st.ConsumerAttached {
		roles = append(roles, "the consumer")
	}
	if st.Kind == ipc.MPSC {
		var slots []string
		for _, p := range st.Producers {
			if p.Alive {
				slots = append(slots, fmt.Sprint(p.Slot))
			}
		}
		switch len(slots) {
		case 0:
		case 1:
			roles = append(roles, "producer slot "+slots[0])
		default:
			roles = append(roles, "producer slots "+strings.Join(slots, ", "))
		}
	} else if st.ProducerAttached {
		roles = append(roles, "the producer")
	}
	switch len(roles) {
	case 0:
		return ""
	case 1:
		if strings.HasPrefix(roles[0], "producer slots") {
			return roles[0] + " are"
		}
		return roles[0] + " is"
	default:
		return strings.Join(roles, " and ") + " are"
	}
}
