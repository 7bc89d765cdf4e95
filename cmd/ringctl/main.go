// Command ringctl creates, inspects, feeds, drains and removes shmring rings.
//
//	ringctl create NAME --size SIZE [--kind spsc|mpsc] [--producers N] [--max-msg SIZE] [--mode 0600] [--dir DIR]
//	ringctl rm NAME [--force] [--dir DIR]
//	ringctl stat NAME [--json] [--dir DIR]
//	ringctl send NAME [--policy hybrid|spin|yield|park|block|backoff|drop] [--timeout DUR] [--peer-timeout DUR] [--id N] [--dir DIR]
//	ringctl send --route R1,R2,R3 [--by least|rr|key] [--key-field N] [--spill] [--policy ...] [--timeout DUR] [--dir DIR]
//	ringctl recv NAME [-n N] [--timeout DUR] [--wait POLICY] [--with-name] [--dir DIR]
//	ringctl recv --set NAME,NAME,GLOB... [-n N] [--timeout DUR] [--wait POLICY] [--with-name] [--dir DIR]
//	ringctl policy NAME [--producers POLICY] [--consumer POLICY] [--dir DIR]
//	ringctl check NAME [--max-depth 80%] [--max-delay DUR] [--consumer-alive] [--json] [--dir DIR]
//	ringctl demo [--messages N] [--msg-size SIZE] [--size SIZE] [--dir DIR] [--bridge [--producers N] [--window N]]
//	ringctl bridge out NAME --nats URL --subject SUBJ [--stream STREAM] [--window N] [--conns N] [--strict-order] [--id ID]
//	ringctl bridge in NAME --nats URL --stream STREAM --consumer DURABLE [--subject SUBJ]
//	ringctl bridge status NAME [--json] [--dir DIR]
//
// NAME is a bare name, resolved in --dir, $SHMRING_DIR or /dev/shm, or a
// path. Flags may come before or after NAME. Sizes take plain bytes or a
// unit: 64KiB, 1MiB (binary), 64K, 1M (binary too), 64kB, 1MB (decimal:
// refused as a capacity, with the binary size it probably meant).
// Errors go to stderr with exit status 1; a usage error (a bad flag: one
// line and a hint) exits with 2; send and recv exit 3 when they stop short
// (docs/operations.md has the table). `ringctl help COMMAND` and
// `ringctl COMMAND --help` print a command's help on stdout;
// `ringctl version` prints the module version and VCS revision.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/shmring/shmring/internal/demo"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/shm"
)

// stdio is what a command reads and writes; tests replace it.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

type command struct {
	usage   string // the synopsis after "ringctl "
	summary string
	run     func(io stdio, args []string) error
	hidden  bool
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"create": {"create NAME --size SIZE [--kind spsc|mpsc] [--producers N] [--max-msg SIZE] [--mode 0600] [--timestamps] [--sequences] [--target-delay DUR] [--pressure-high SIZE] [--drop-oldest] [--header-commit] [--dir DIR]", "create a ring", runCreate, false},
		"rm":     {"rm NAME [--force] [--dir DIR]", "remove a ring", runRm, false},
		"stat":   {"stat NAME [--json] [--dir DIR]", "show a ring's geometry, positions and counters", runStat, false},
		"send":   {"send NAME|--route R1,R2,... [--by least|rr|key] [--key-field N] [--spill] [--policy hybrid|spin|yield|park|block|backoff|drop|drop-oldest] [--timeout DUR] [--peer-timeout DUR] [--id N] [--dir DIR]", "write each line of stdin as one message (to one ring, or routed over several)", runSend, false},
		"recv":   {"recv NAME | --set NAME,GLOB,... [-n N] [--timeout DUR] [--wait POLICY] [--with-name] [--dir DIR]", "print messages as lines, in order (--set: from many rings, round robin)", runRecv, false},
		"ls":     {"ls [--dir DIR] [--json]", "list the rings in a directory: kind, size, depth, producers, consumer, drops", runLs, false},
		"peek":   {"peek NAME [-n N] [--json] [--dir DIR]", "show pending messages without consuming them", runPeek, false},
		"doctor": {"doctor NAME [--repair] [--json] [--dir DIR]", "validate a ring; report dead producers and stuck reservations; repair", runDoctor, false},
		"reset":  {"reset NAME [--dir DIR]", "start a new high-watermark period", runReset, false},
		"serve":  {"serve [--listen ADDR] [--dir DIR]", "serve Prometheus metrics for every ring in a directory", runServe, false},
		"watch":  {"watch NAME... [--interval DUR] [--once] [--count N] [--json] [--dir DIR]", "a live view: depth, rates, pressure, drops", runWatch, false},
		"policy": {"policy NAME [--producers POLICY] [--consumer POLICY] [--json] [--dir DIR]", "show or override the wait policy of a live ring's producers and consumer", runPolicy, false},
		"check":  {"check NAME [--max-depth 80%] [--max-delay DUR [--window DUR]] [--consumer-alive] [--json] [--dir DIR]", "exit 0 if a ring is healthy, 3 with the reasons if not: for scripts and deployment gates", runCheck, false},
		"bridge": {bridgeUsage, "run a NATS JetStream bridge for a ring (out: ring → stream, in: stream → ring), or show its state (status)", runBridge, false},
		"demo":   {"demo [--messages N] [--msg-size SIZE] [--size SIZE] [--dir DIR] [--bridge [--producers N] [--window N]]", "run a producer and a consumer process through a fresh ring (--bridge: through two rings and NATS JetStream) and report", runDemo, false},
	}
}

func main() {
	// The demo re-executes this binary as its producer and consumer.
	demo.ChildMain("ringctl: ")
	os.Exit(run(stdio{os.Stdin, os.Stdout, os.Stderr}, os.Args[1:]))
}

// errUsage marks an error as a usage error (exit status 2).
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }
func (u usageError) Is(t error) bool {
	return t == errUsage
}

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func run(io stdio, args []string) int {
	if len(args) == 0 {
		printUsage(io.err) // usage asked by mistake is an error: stderr
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(io.out)
		return 0
	case "help":
		return runHelp(io, args[1:])
	case "version", "--version":
		return runVersion(io, args[1:])
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(io.err, "ringctl: unknown command %q (see `ringctl --help`)\n", args[0])
		return exitUsage
	}
	err := cmd.run(io, args[1:])
	var exit exitError
	var fe flagError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &fe):
		fmt.Fprintf(io.err, "ringctl %s: %v (see `ringctl %s --help`)\n", args[0], fe.msg, args[0])
		if args[0] == "bridge" { // three verbs: the usage says which flags go with which
			fmt.Fprintf(io.err, "usage: ringctl %s\n", cmd.usage)
		}
		return exitUsage
	case errors.Is(err, errUsage):
		fmt.Fprintf(io.err, "ringctl %s: %v\nusage: ringctl %s\n", args[0], err, cmd.usage)
		return exitUsage
	case errors.As(err, &exit):
		if exit.msg != "" {
			fmt.Fprintf(io.err, "ringctl %s: %s\n", args[0], exit.msg)
		}
		return exit.code
	case errors.Is(err, errSilentFailure):
		return 1
	default:
		msg := cliWording(err.Error())
		if args[0] == "bridge" { // package bridge's errors start "bridge: " too
			msg = strings.TrimPrefix(msg, "bridge: ")
		}
		msg += corruptRemedy(args[0], err)
		fmt.Fprintf(io.err, "ringctl %s: %s\n", args[0], msg)
		return 1
	}
}

// Exit statuses; docs/operations.md has the table per command.
const (
	exitFailed = 1 // an error, explained on stderr
	exitUsage  = 2 // a usage error: bad flag or argument
	// exitStopped: the command stopped short of its goal, as documented
	// per command: send under a waiting policy found the ring full past its
	// timeout or no consumer; recv got fewer than -n messages.
	exitStopped = 3
	// exitDropped: send finished but some lines were not sent: dropped
	// (--policy drop or drop-oldest, or an operator's override to drop) or
	// larger than the ring's maximum message; the counts are on stderr.
	exitDropped = 4
)

// exitError ends a command with its own exit status after printing msg,
// if any, as "ringctl CMD: msg".
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// errSilentFailure exits 1 after the command has already explained itself.
var errSilentFailure = errors.New("failed")

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "ringctl: create, inspect, feed and drain shmring rings")
	fmt.Fprintln(w, "\nusage:")
	var names []string
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  ringctl %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "  ringctl %-8s %s\n", "version", "print the module version and VCS revision")
	fmt.Fprintln(w, "\nRun 'ringctl help COMMAND' or 'ringctl COMMAND --help' for a command's flags.")
	fmt.Fprintln(w, "NAME is a bare name (in --dir, $SHMRING_DIR or /dev/shm) or a path.")
}

// newFlags returns a flag set for a command. Its own messages are
// silenced: parse turns a flag error into one line with a hint, and
// --help prints the command's help on stdout.
func newFlags(io stdio, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(silent{io.out})
	fs.Usage = func() {}
	return fs
}

// silent swallows the flag package's own messages and keeps where the
// command's help goes.
type silent struct{ out io.Writer }

func (silent) Write(p []byte) (int, error) { return len(p), nil }

// parseFlags is fs.Parse that prints the command's help for --help (and
// returns flag.ErrHelp) and turns other errors into one-line flagErrors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		if s, ok := fs.Output().(silent); ok {
			fs.SetOutput(s.out)
			printCommandHelp(s.out, fs.Name(), fs)
			fs.SetOutput(s)
		}
		return err
	}
	return flagUsage(err)
}

// printCommandHelp prints a command's synopsis, summary and flags.
func printCommandHelp(w io.Writer, name string, fs *flag.FlagSet) {
	c := commands[name]
	fmt.Fprintf(w, "usage: ringctl %s\n\n%s.\n", c.usage, c.summary)
	if fs == nil {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.PrintDefaults()
}

// flagError is a flag the flag package refused, said in one line, with
// flags written as users type them (--name).
type flagError struct{ msg string }

func (f flagError) Error() string   { return f.msg }
func (f flagError) Is(t error) bool { return t == errUsage }

// flagUsage turns an error of the flag package into a flagError.
func flagUsage(err error) error {
	s := err.Error()
	switch {
	case strings.HasPrefix(s, "flag provided but not defined: "):
		s = "unknown flag -" + strings.TrimPrefix(s, "flag provided but not defined: ")
	case strings.HasPrefix(s, "flag needs an argument: "):
		s = "flag -" + strings.TrimPrefix(s, "flag needs an argument: ") + " needs a value"
	default:
		s = strings.Replace(s, " for flag -", " for flag --", 1)
	}
	return flagError{s}
}

// runHelp prints the help of one command (ringctl help create), or the
// overview.
func runHelp(io stdio, args []string) int {
	if len(args) == 0 {
		printUsage(io.out)
		return 0
	}
	if _, ok := commands[args[0]]; !ok {
		if args[0] == "help" || args[0] == "version" {
			fmt.Fprintf(io.out, "usage: ringctl %s\n", args[0])
			return 0
		}
		fmt.Fprintf(io.err, "ringctl help: unknown command %q (see `ringctl --help`)\n", args[0])
		return exitUsage
	}
	return run(io, []string{args[0], "--help"})
}

// parse parses flags that may stand before or after the positional
// arguments, as users type them, and checks the positional count.
func parse(fs *flag.FlagSet, args []string, wantPos int) ([]string, error) {
	pos, err := parseAll(fs, args)
	if err != nil {
		return nil, err
	}
	return pos, checkPos(pos, wantPos)
}

// parseAll parses flags anywhere among args and returns the positional
// arguments, however many.
func parseAll(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// checkPos refuses a count of positional arguments other than wantPos
// (-1: any count; the caller checks).
func checkPos(pos []string, wantPos int) error {
	if wantPos >= 0 && len(pos) != wantPos { // -1: the caller checks
		if wantPos == 1 && len(pos) == 0 {
			return usagef("missing ring NAME")
		}
		return usagef("want %d argument(s), got %d: %q", wantPos, len(pos), pos)
	}
	return nil
}

// corruptRemedy is what to do about err, for an error of command cmd that
// matches ipc.ErrCorrupt and does not say it already ("recreate"); ""
// otherwise.
func corruptRemedy(cmd string, err error) string {
	if !errors.Is(err, ipc.ErrCorrupt) || strings.Contains(err.Error(), "recreate") {
		return ""
	}
	what := "the segment is damaged"
	if errors.Is(err, shm.ErrBadMagic) {
		what = "if NAME is a ring, its segment is damaged"
	}
	doctor := ", run `ringctl doctor NAME` for what is wrong"
	if cmd == "doctor" {
		doctor = ""
	}
	return fmt.Sprintf("; %s: stop every process using it%s, then remove and recreate it (ringctl rm NAME; messages still in it are lost)", what, doctor)
}

// cliWording rewrites the Go API's advice in an error for a ringctl user:
// the option TrustOwner is the flag --trust-owner here.
func cliWording(msg string) string {
	return strings.NewReplacer(
		"pass TrustOwner (ringctl --trust-owner)", "pass --trust-owner",
		"pass TrustOwner", "pass --trust-owner",
		"ipc.Config{Sequences: true}", "ringctl create --sequences",
		// The bridge's advice (ringctl bridge).
		"check InConfig.URL", "check --nats (or $NATS_URL)", "check OutConfig.URL", "check --nats (or $NATS_URL)",
		"InConfig.Creds, User and Password", "--creds, --user and --password", "OutConfig.Creds, User and Password", "--creds, --user and --password",
		"InConfig.Creds", "--creds", "OutConfig.Creds", "--creds", "InConfig.URL", "--nats", "OutConfig.URL", "--nats",
		"set InConfig.CreateConsumer", "pass --create-consumer", "the bridge with InConfig.CreateConsumer", "the bridge with --create-consumer", "InConfig.ProducerID to a fixed producer ID (1 to", "--producer-id (1 to", "ID n is slot n-1", "--producer-id N is slot N-1 in ringctl stat", "InConfig.ProducerID", "--producer-id",
		"InConfig.Subject", "--subject", "InConfig.Stream", "--stream", "OutConfig.Stream", "--stream", "OutConfig.Subject", "--subject",
		"InConfig.RootCA", "--tlsca", "OutConfig.RootCA", "--tlsca", "OutConfig.StrictOrder (--strict-order)", "--strict-order",
		"OutConfig.StrictOrder with Conns", "--strict-order with --conns", "set Conns to 0 or 1, or turn StrictOrder off", "set --conns to 0 or 1, or drop --strict-order",
		"OutConfig.Conns", "--conns", "OutConfig.ID", "--id",
	).Replace(msg)
}
