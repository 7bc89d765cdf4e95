package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// running is every child started and not yet waited for: fail kills them
// (they would die with the parent anyway, by their Pdeathsig).
var running struct {
	sync.Mutex
	set map[*child]struct{}
}

// killRunning kills every child still running.
func killRunning() {
	running.Lock()
	defer running.Unlock()
	for c := range running.set {
		_ = c.cmd.Process.Kill()
	}
}

// child is one child process of a case (childSpec, child.go).
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer  // the child's stderr: read only once it has exited
	ready  time.Duration // its CPU time when it said ready
	times  int           // the most durations it may report (its messages if timed)
}

// event is a child's report: a line of its stdout ("ready", "done",
// "released"), or "exit" when it has exited (err nil if with status 0).
type event struct {
	c     *child
	kind  string
	cpu   time.Duration
	times []time.Duration
	err   error
}

// group is a case's children, their events on one channel.
type group struct {
	events chan event
	kids   []*child
	live   int // started and not yet seen exit
}

// newGroup makes a group for at most n children.
func newGroup(n int) *group {
	// At most ready, done or released, and exit from each: the readers
	// never block on a group no longer read.
	return &group{events: make(chan event, 4*n)}
}

// start starts a child of spec sp, named name in errors.
func (g *group) start(name string, sp childSpec) (*child, error) {
	js, err := json.Marshal(sp)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find bridgebench's own executable to start %s: %w", name, err)
	}
	c := &child{name: name, cmd: exec.Command(exe)}
	if sp.Timed {
		c.times = sp.Per
	}
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	// Killed when the parent's thread that started it exits: the parent
	// dying, however it dies (Go threads otherwise live as long as the
	// process). A child also exits when its stdin closes.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.cmd.Stderr = &c.stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	running.Lock()
	defer running.Unlock()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if running.set == nil {
		running.set = map[*child]struct{}{}
	}
	running.set[c] = struct{}{}
	g.kids = append(g.kids, c)
	g.live++
	go c.read(bufio.NewReader(stdout), g.events)
	return c, nil
}

// read turns the child's stdout into events until it ends, then waits for
// the child and sends its exit.
func (c *child) read(r *bufio.Reader, events chan<- event) {
	var err error
	for {
		var line string
		if line, err = r.ReadString('\n'); err != nil {
			break
		}
		ev, perr := parseEvent(c, line, r)
		if perr != nil {
			err = fmt.Errorf("its report %q: %w", strings.TrimSpace(line), perr)
			_ = c.cmd.Process.Kill()
			break
		}
		events <- ev
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	werr := c.cmd.Wait()
	running.Lock()
	delete(running.set, c)
	running.Unlock()
	if err = errors.Join(err, werr); err != nil {
		err = fmt.Errorf("%s: %w", c.name, err)
		if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
			err = fmt.Errorf("%w; its stderr: %s", err, msg)
		}
	}
	events <- event{c: c, kind: "exit", err: err}
}

// parseEvent parses one line of a child's report (and the durations
// following a done line).
func parseEvent(c *child, line string, r *bufio.Reader) (event, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return event{}, errors.New("not KIND CPU")
	}
	ns, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return event{}, err
	}
	ev := event{c: c, kind: f[0], cpu: time.Duration(ns)}
	switch {
	case ev.kind == "done" && len(f) == 3:
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 0 || n > c.times {
			return event{}, fmt.Errorf("count %q: want 0 to %d, its messages if timed", f[2], c.times)
		}
		bin := make([]byte, 8*n)
		if _, err := io.ReadFull(r, bin); err != nil {
			return event{}, fmt.Errorf("its %d durations: %w", n, err)
		}
		ev.times = make([]time.Duration, n)
		for i := range ev.times {
			ev.times[i] = time.Duration(binary.LittleEndian.Uint64(bin[8*i:]))
		}
	case (ev.kind == "ready" || ev.kind == "released") && len(f) == 2:
	default:
		return event{}, errors.New("unknown report")
	}
	return ev, nil
}

// next returns the next event of any child; a child exiting with an error
// (or ctx expiring) is the error.
func (g *group) next(ctx context.Context) (event, error) {
	select {
	case ev := <-g.events:
		if ev.kind == "exit" {
			g.live--
			return ev, ev.err
		}
		return ev, nil
	case <-ctx.Done():
		return event{}, fmt.Errorf("waiting for the children: %w", ctx.Err())
	}
}

// close closes every child's stdin (the bridge stops, a producer not yet
// done exits) and waits for them to exit; the first error.
func (g *group) close(ctx context.Context) error {
	for _, c := range g.kids {
		_ = c.stdin.Close()
	}
	var errs []error
	for g.live > 0 {
		ev, err := g.next(ctx)
		if ev.kind == "exit" || err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			g.kill()
			break
		}
	}
	return errors.Join(errs...)
}

// kill kills every child still running and waits for them.
func (g *group) kill() {
	for _, c := range g.kids {
		_ = c.stdin.Close()
		_ = c.cmd.Process.Kill() // an error for those already waited for
	}
	for g.live > 0 {
		if ev := <-g.events; ev.kind == "exit" {
			g.live--
		}
	}
}

// kidsResult is what runKids measured.
type kidsResult struct {
	elapsed time.Duration   // from go to the last producer's done, or the bridge's released
	cpu     time.Duration   // the parent's CPU time over it, and each child's from its ready to its done or released
	times   []time.Duration // the producers' send calls, if timed
}

// runKids runs a case's children in g: the bridge first if br is not nil
// (waiting for it to be ready), then p.producers producers of spec prod
// (K set to each's number). When all are ready (connected, the ring
// opened: not timed) it says go to every producer, and waits until each
// has said done and exited 0 and, if br.Total is set, the bridge has
// released br.Total messages (it is told when the producers are done).
// The bridge keeps running: g.close stops it.
func runKids(ctx context.Context, g *group, p params, br *childSpec, prod childSpec) (res kidsResult, err error) {
	var bc *child
	if br != nil {
		if bc, err = g.start("the bridge", *br); err != nil {
			return res, err
		}
		if err = g.waitReady(ctx, 1); err != nil {
			return res, err
		}
	}
	prods := make([]*child, p.producers)
	for k := range prods {
		sp := prod
		sp.K = k
		if prods[k], err = g.start("producer "+strconv.Itoa(k), sp); err != nil {
			return res, err
		}
	}
	if err = g.waitReady(ctx, p.producers); err != nil {
		return res, err
	}
	start, cpu0 := time.Now(), cpuTime()
	for _, c := range prods {
		if _, err := c.stdin.Write([]byte{'g'}); err != nil {
			return res, fmt.Errorf("tell %s to go: %w", c.name, err)
		}
	}
	var end time.Time
	var cpu1, kids time.Duration
	released := br == nil || br.Total == 0
	for done, exited := 0, 0; done < p.producers || exited < p.producers || !released; {
		ev, err := g.next(ctx)
		if err != nil {
			return res, err
		}
		switch {
		case ev.kind == "done":
			done++
			kids += ev.cpu - ev.c.ready
			res.times = append(res.times, ev.times...)
			if done < p.producers {
				break
			}
			if !released {
				if _, err := bc.stdin.Write([]byte{'p'}); err != nil {
					return res, fmt.Errorf("tell the bridge the producers are done: %w", err)
				}
			} else {
				end, cpu1 = time.Now(), cpuTime()
			}
		case ev.kind == "released":
			released = true
			kids += ev.cpu - ev.c.ready
			end, cpu1 = time.Now(), cpuTime()
		case ev.kind == "exit" && ev.c == bc:
			return res, errors.New("the bridge exited before it was told to")
		case ev.kind == "exit":
			exited++
		default:
			return res, fmt.Errorf("%s: unexpected report %q", ev.c.name, ev.kind)
		}
	}
	res.elapsed, res.cpu = end.Sub(start), cpu1-cpu0+kids
	return res, nil
}

// waitReady waits for n children to say ready, noting their CPU time.
func (g *group) waitReady(ctx context.Context, n int) error {
	for n > 0 {
		ev, err := g.next(ctx)
		if err != nil {
			return err
		}
		if ev.kind != "ready" {
			return fmt.Errorf("%s: %q before ready", ev.c.name, ev.kind)
		}
		ev.c.ready = ev.cpu
		n--
	}
	return nil
}

// producerMode is the producer children's mode for a case.
func producerMode(bridged, ids bool, raw int) string {
	switch {
	case bridged:
		return modeRing
	case raw == rawAck:
		return modeRawID
	case raw == rawFast:
		return modeFastID
	case ids:
		return modeDirectID
	}
	return modeDirect
}
