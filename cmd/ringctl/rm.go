package main

import (
	"fmt"

	"github.com/shmring/shmring/ipc"
)

func runRm(io stdio, args []string) error {
	fs := newFlags(io, "rm")
	var loc location
	loc.register(fs)
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if err := ipc.Remove(pos[0], loc.options()...); err != nil {
		return err
	}
	fmt.Fprintf(io.out, "removed %s\n", show(pos[0]))
	return nil
}
