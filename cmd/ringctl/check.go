package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// runCheck answers "is this ring healthy?" for scripts and deployment
// gates: exit 0 if so, 3 with the reasons if not.
func runCheck(sio stdio, args []string) error {
	fs := newFlags(sio, "check")
	var loc location
	loc.register(fs)
	var c healthCriteria
	fs.Var(&c.maxDepth, "max-depth", "unhealthy above this depth: a percentage of the capacity (80%) or a size (48KiB)")
	var maxDelay units.DurationFlag
	fs.Var(&maxDelay, "max-delay", "unhealthy if the mean queueing delay of messages delivered during --window is above DUR, or none is delivered while some are pending (rings created --timestamps)")
	window := units.DurationFlag{Value: time.Second}
	fs.Var(&window, "window", "how long --max-delay watches the ring (default 1s)")
	fs.BoolVar(&c.consumerAlive, "consumer-alive", false, "unhealthy unless a live process holds the consumer role")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if window.Given && !maxDelay.Given {
		return usagef("--window goes with --max-delay")
	}
	if maxDelay.Given && (maxDelay.Value <= 0 || window.Value <= 0) {
		return usagef("--max-delay and --window must be positive")
	}
	c.maxDelay, c.window = maxDelay.Value, window.Value
	r, err := ipc.Open(pos[0], append(loc.options(), ipc.WithReadOnly())...)
	if err != nil {
		return err
	}
	defer r.Close()
	var before *ipc.Stats
	if c.maxDelay > 0 {
		st, err := r.Stats()
		if err != nil {
			return err
		}
		if !st.Timestamps {
			return usagef("--max-delay needs a ring whose records carry timestamps (ringctl create --timestamps); %s has none", pos[0])
		}
		before = &st
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted before the --window passed")
		case <-time.After(c.window):
		}
	}
	st, err := r.Stats()
	if err != nil {
		return err
	}
	rep := healthReport{Ring: pos[0], Reasons: unhealthyReasons(st, before, c)}
	if err := ops.Validate(r); err != nil {
		if !errors.Is(err, ipc.ErrCorrupt) {
			return err
		}
		rep.Reasons = append([]string{corruptReason(err)}, rep.Reasons...)
	}
	rep.Healthy = len(rep.Reasons) == 0
	if *asJSON {
		if err := json.NewEncoder(sio.out).Encode(rep); err != nil {
			return err
		}
		if rep.Healthy {
			return nil
		}
		return exitError{code: exitStopped}
	}
	if rep.Healthy {
		fmt.Fprintf(sio.out, "%s: healthy\n", show(pos[0]))
		return nil
	}
	return exitError{exitStopped, fmt.Sprintf("%s is unhealthy: %s", show(pos[0]), strings.Join(rep.Reasons, "; "))}
}
