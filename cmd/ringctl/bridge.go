package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// ringctl bridge: out and in run a NATS JetStream bridge for a ring
// (bridge_run.go); status shows the bridge blocks of a ring's segment.

const bridgeUsage = "bridge out NAME --nats URL --subject SUBJ [--stream STREAM] [--window N] [--conns N] [--strict-order] [--id ID] [NATS and --embedded flags]\n" +
	"       ringctl bridge in NAME --nats URL --stream STREAM --consumer DURABLE [--subject SUBJ] [--create-consumer] [--producer-id N] [NATS and --embedded flags]\n" +
	"       ringctl bridge status NAME [--json] [--dir DIR]"

func runBridge(sio stdio, args []string) error {
	if len(args) == 0 {
		return usagef("missing verb: out (ring → stream), in (stream → ring) or status")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printCommandHelp(sio.out, "bridge", nil)
		fmt.Fprintln(sio.out, "\nRun 'ringctl bridge out --help' (or in, status) for a verb's flags.")
		return flag.ErrHelp
	case "out":
		return bridgeOut(sio, args[1:])
	case "in":
		return bridgeIn(sio, args[1:])
	case "status":
		return bridgeStatus(sio, args[1:])
	}
	return usagef("unknown verb %q: want out (ring → stream), in (stream → ring) or status", args[0])
}

// bridgeReport is one bridge block as bridge status and stat print it; its
// JSON names are a contract for scripts. Moved and Mark mean what the
// direction says (docs/bridge.md, "Watching a bridge").
type bridgeReport struct {
	Direction    string    `json:"direction"` // "out" (ring → stream) or "in" (stream → ring)
	Up           bool      `json:"up"`        // heartbeat fresh and not stopped
	Stale        bool      `json:"stale"`     // dead or hung: heartbeat older than 5 s and not stopped
	State        string    `json:"state"`
	Connection   string    `json:"connection"`
	PID          uint64    `json:"pid"`
	PIDNamespace uint64    `json:"pid_namespace"`
	Heartbeat    time.Time `json:"heartbeat"`
	HeartbeatAge float64   `json:"heartbeat_age_seconds"`
	Started      time.Time `json:"started"`
	Window       uint64    `json:"window"`
	InFlight     uint64    `json:"in_flight"`
	Moved        uint64    `json:"moved"` // out: published; in: written into the ring
	Acked        uint64    `json:"acked"`
	Duplicates   uint64    `json:"duplicates"`
	Errors       uint64    `json:"errors"`
	Reconnects   uint64    `json:"reconnects"`
	Mark         uint64    `json:"mark"` // out: released from the ring; in: last stream sequence in the ring
}

// bridgeReports reads r's bridge blocks (none if no bridge ever ran on it).
func bridgeReports(r *ipc.Ring) ([]bridgeReport, error) {
	bs, err := ops.Bridges(r)
	if err != nil {
		return nil, err
	}
	out := []bridgeReport{}
	for _, b := range bs {
		out = append(out, bridgeReport{
			Direction: b.Direction, Up: b.Up, Stale: b.Stale, State: b.State, Connection: b.Connection,
			PID: b.PID, PIDNamespace: b.PIDNamespace, Heartbeat: b.Heartbeat.UTC(), HeartbeatAge: b.Age.Seconds(),
			Started: b.Started.UTC(), Window: b.Window, InFlight: b.InFlight, Moved: b.Moved, Acked: b.Acked,
			Duplicates: b.Duplicates, Errors: b.Errors, Reconnects: b.Reconnects, Mark: b.Mark,
		})
	}
	return out, nil
}

func bridgeStatus(sio stdio, args []string) error {
	fs := newFlags(sio, "bridge")
	var loc location
	loc.register(fs)
	asJSON := fs.Bool("json", false, "print JSON: a list of bridge blocks")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	r, err := ipc.Open(pos[0], append(loc.options(), ipc.WithReadOnly())...)
	if err != nil {
		return err
	}
	defer r.Close()
	reps, err := bridgeReports(r)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(sio.out)
		enc.SetIndent("", "  ")
		return enc.Encode(reps)
	}
	if len(reps) == 0 {
		fmt.Fprintf(sio.out, "%s: no bridge has run on this ring\n", show(r.Path()))
		return nil
	}
	fmt.Fprintln(sio.out, show(r.Path()))
	printBridges(sio.out, reps)
	return nil
}

// bridgeHealth says in a word how a bridge is: up, stopped, or stale.
func bridgeHealth(b bridgeReport) string {
	switch {
	case b.Up:
		return "up"
	case !b.Stale:
		return "stopped"
	}
	if b.HeartbeatAge < 0 {
		return "stale: its heartbeat is in the future (clock skew or a damaged word)"
	}
	return "stale: no heartbeat for 5 s or more (dead or hung)"
}

// printBridges prints each bridge block as a section, for bridge status
// and stat.
func printBridges(w io.Writer, reps []bridgeReport) {
	for _, b := range reps {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		p := func(k, format string, a ...any) { fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, a...)...) }
		dir := "out (ring → stream)"
		if b.Direction == "in" {
			dir = "in (stream → ring)"
		}
		fmt.Fprintf(tw, "bridge %s: %s\n", dir, bridgeHealth(b))
		p("state", "%s", b.State)
		p("connection", "%s, %d reconnects", b.Connection, b.Reconnects)
		p("process", "pid %d (pid namespace %s), started %s", b.PID, pidNamespace(b.PIDNamespace), b.Started.Format(time.RFC3339))
		if age := time.Duration(b.HeartbeatAge * float64(time.Second)).Round(time.Millisecond); age >= 0 {
			p("heartbeat", "%v ago", age)
		} else {
			p("heartbeat", "in the future (clock skew or a damaged word)")
		}
		if b.Direction == "out" {
			p("window", "%d of %d in flight", b.InFlight, b.Window)
			p("published", "%d", b.Moved)
			p("acknowledged", "%d (%d duplicates)", b.Acked, b.Duplicates)
			p("released", "%d", b.Mark)
		} else {
			p("fetch batch", "%d, paused %s", b.Window, yesNo(b.InFlight != 0))
			p("written", "%d (%d duplicates skipped)", b.Moved, b.Duplicates)
			p("acknowledged", "%d", b.Acked)
			p("last sequence", "%d", b.Mark)
		}
		p("errors", "%d", b.Errors)
		_ = tw.Flush()
	}
}
