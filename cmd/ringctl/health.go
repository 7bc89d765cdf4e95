package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
)

// healthCriteria says what a healthy ring is, for check and for serve's
// /healthz (which uses consumerAlive and the ring's own pressure).
type healthCriteria struct {
	consumerAlive bool          // a live process holds the consumer role
	maxDepth      depthLimit    // depth at most this (zero: no limit)
	maxDelay      time.Duration // mean queueing delay over window at most this (0: no limit)
	window        time.Duration // the window of maxDelay
}

// healthReport is the answer, as JSON for /healthz and check --json.
type healthReport struct {
	Ring    string   `json:"ring"`
	Healthy bool     `json:"healthy"`
	Reasons []string `json:"reasons,omitempty"`
}

// depthLimit is --max-depth: a percentage of the capacity ("80%") or a
// size ("48KiB").
type depthLimit struct {
	pct   float64 // 0 < pct <= 100, if given as a percentage
	bytes uint64  // otherwise
	raw   string
}

func (d *depthLimit) String() string { return d.raw }

func (d *depthLimit) Set(s string) error {
	if p, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || !(v > 0 && v <= 100) {
			return fmt.Errorf("invalid depth %q: want a percentage above 0 and at most 100, e.g. 80%%, or a size such as 48KiB", s)
		}
		*d = depthLimit{pct: v, raw: s}
		return nil
	}
	v, err := units.ParseSize(s)
	if err != nil || v == 0 {
		return fmt.Errorf("invalid depth %q: want a percentage such as 80%% or a size such as 48KiB", s)
	}
	*d = depthLimit{bytes: v, raw: s}
	return nil
}

func (d depthLimit) set() bool { return d.raw != "" }

// exceeded reports whether depth (of capacity) is above the limit.
func (d depthLimit) exceeded(depth, capacity uint64) bool {
	if d.pct > 0 {
		return float64(depth) > d.pct/100*float64(capacity)
	}
	return depth > d.bytes
}

// unhealthyReasons evaluates a ring's counters st against c; before, if c
// has a delay limit, is a snapshot taken c.window earlier. It checks the
// ring's own pressure in every case.
func unhealthyReasons(st ipc.Stats, before *ipc.Stats, c healthCriteria) []string {
	var why []string
	if c.consumerAlive && !st.ConsumerAttached {
		why = append(why, "no consumer is attached")
	}
	if st.Pressure.Depth {
		why = append(why, fmt.Sprintf("pressure raised: depth %s is past the high level %s", units.FormatSize(st.Depth), units.FormatSize(st.PressureHigh)))
	}
	if st.Pressure.Delay {
		why = append(why, fmt.Sprintf("pressure raised: queueing delay stayed above the target %v", st.TargetDelay))
	}
	if c.maxDepth.set() && c.maxDepth.exceeded(st.Depth, st.Capacity) {
		why = append(why, fmt.Sprintf("depth %s (%.1f%%) is above --max-depth %s", units.FormatSize(st.Depth), 100*float64(st.Depth)/float64(st.Capacity), c.maxDepth.raw))
	}
	if c.maxDelay > 0 && before != nil {
		n := st.DelayCount - before.DelayCount
		pending := pendingMessages(st)
		switch {
		case n > 0:
			mean := time.Duration((st.DelaySum - before.DelaySum) / n)
			if mean > c.maxDelay {
				why = append(why, fmt.Sprintf("mean queueing delay %v of the %d messages delivered in the last %v is above --max-delay %v", mean, n, c.window, c.maxDelay))
			}
		case pending > 0 && c.window >= c.maxDelay:
			why = append(why, fmt.Sprintf("no message was delivered in the last %v while %d are pending (--max-delay %v)", c.window, pending, c.maxDelay))
		}
	}
	return why
}

// pendingMessages is the number of messages written and not yet read or
// discarded: messages in − messages out − duplicates (a duplicate is
// counted in when written, and discarded unread), floored at zero (the
// counters are loaded one by one; docs/layout.md, line 3).
func pendingMessages(st ipc.Stats) uint64 {
	if done := st.MsgsOut + st.Duplicates; st.MsgsIn > done {
		return st.MsgsIn - done
	}
	return 0
}

// corruptReason is the unhealthy reason for a ring that ops.Validate found
// damaged (err): what, where, and what to do.
func corruptReason(err error) string {
	return "corrupt: " + err.Error() + " (the ring cannot be repaired: stop every process using it, remove and recreate it; the messages in it cannot be trusted)"
}
