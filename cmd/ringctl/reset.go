package main

import (
	"fmt"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// runReset starts a new high-watermark period.
func runReset(sio stdio, args []string) error {
	fs := newFlags(sio, "reset")
	var loc location
	loc.register(fs)
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	r, err := ipc.Open(pos[0], loc.options()...)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := ops.ResetHighWater(r); err != nil {
		return err
	}
	fmt.Fprintf(sio.out, "%s: high watermark reset to the current depth\n", show(r.Path()))
	return nil
}
