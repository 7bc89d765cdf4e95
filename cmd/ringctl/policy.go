package main

import (
	"encoding/json"
	"fmt"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// runPolicy shows or sets the wait-policy overrides in a ring's segment;
// running producers and consumers follow them from their next wait.
func runPolicy(sio stdio, args []string) error {
	fs := newFlags(sio, "policy")
	var loc location
	loc.register(fs)
	prod := fs.String("producers", "", "override for every producer: hybrid, spin, yield, park, block, backoff, drop, or none")
	cons := fs.String("consumer", "", "override for the consumer: hybrid, spin, yield, park, block, backoff, or none")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	pm, setP, err := parseOverride("producers", *prod, true)
	if err != nil {
		return err
	}
	cm, setC, err := parseOverride("consumer", *cons, false)
	if err != nil {
		return err
	}
	r, err := ipc.Open(pos[0], loc.options()...)
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Stats()
	if err != nil {
		return err
	}
	// The names of the overrides in force; a flag replaces one.
	pname, cname := st.ProducerOverride, st.ConsumerOverride
	if setP {
		pname = override(pm)
	}
	if setC {
		cname = override(cm)
	}
	if setP || setC {
		// The side not given keeps its word: read back from its name.
		if !setP {
			if pm, err = storedOverride(pname); err != nil {
				return err
			}
		}
		if !setC {
			if cm, err = storedOverride(cname); err != nil {
				return err
			}
		}
		if err := ops.SetPolicy(r, pm, cm); err != nil {
			return err
		}
	}
	showPolicy := func(name string) string {
		if name == "" {
			return "none (each uses its own)"
		}
		return name
	}
	if *asJSON {
		return json.NewEncoder(sio.out).Encode(map[string]string{"path": r.Path(), "producers": pname, "consumer": cname})
	}
	fmt.Fprintf(sio.out, "%s: producers %s, consumer %s\n", show(r.Path()), showPolicy(pname), showPolicy(cname))
	return nil
}

// override names a wait-policy override ("" for none).
func override(p ops.Policy) string {
	if p == 0 {
		return ""
	}
	return p.String()
}

// storedOverride is the override word named name as Stats reports it
// (ProducerOverride, ConsumerOverride: "" for none).
func storedOverride(name string) (ops.Policy, error) {
	if name == "" {
		return 0, nil
	}
	p, err := ops.ParsePolicy(name)
	if err != nil {
		return 0, fmt.Errorf("the ring's current override %q is not a policy (the segment may be damaged): set both --producers and --consumer: %w", name, err)
	}
	return p, nil
}

// parseOverride reads a --producers or --consumer value: a policy name, or
// "none" to remove the override. set is false when the flag was not given.
func parseOverride(flag, s string, mayDrop bool) (p ops.Policy, set bool, err error) {
	switch s {
	case "":
		return 0, false, nil
	case "none":
		return 0, true, nil
	}
	p, err = ops.ParsePolicy(s)
	if err != nil || (p.String() == "drop" && !mayDrop) {
		want := "hybrid, spin, yield, park, block, backoff or none"
		if mayDrop {
			want = "hybrid, spin, yield, park, block, backoff, drop or none"
		}
		return 0, false, usagef("--%s %q: want %s", flag, s, want)
	}
	return p, true, nil
}
