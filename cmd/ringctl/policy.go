package main

import (
	"encoding/json"
	"fmt"

	"github.com/shmring/shmring/ipc"
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
	if !setP {
		pm = ipc.Policy(st.ProducerMode)
	}
	if !setC {
		cm = ipc.Policy(st.ConsumerMode)
	}
	if setP || setC {
		if err := r.SetPolicy(pm, cm); err != nil {
			return err
		}
	}
	showPolicy := func(p ipc.Policy) string {
		if p == 0 {
			return "none (each uses its own)"
		}
		return p.String()
	}
	if *asJSON {
		return json.NewEncoder(sio.out).Encode(map[string]string{"path": r.Path(), "producers": override(uint32(pm)), "consumer": override(uint32(cm))})
	}
	fmt.Fprintf(sio.out, "%s: producers %s, consumer %s\n", show(r.Path()), showPolicy(pm), showPolicy(cm))
	return nil
}

// parseOverride reads a --producers or --consumer value: a policy name, or
// "none" to remove the override. set is false when the flag was not given.
func parseOverride(flag, s string, mayDrop bool) (p ipc.Policy, set bool, err error) {
	switch s {
	case "":
		return 0, false, nil
	case "none":
		return 0, true, nil
	}
	p, err = ipc.ParsePolicy(s)
	if err != nil || (p == ipc.Drop && !mayDrop) {
		want := "hybrid, spin, yield, park, block, backoff or none"
		if mayDrop {
			want = "hybrid, spin, yield, park, block, backoff, drop or none"
		}
		return 0, false, usagef("--%s %q: want %s", flag, s, want)
	}
	return p, true, nil
}
