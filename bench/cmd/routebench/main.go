// Command routebench measures pressure-aware routing (package route)
// between real processes: one producer sends at a fixed rate to 4 worker
// processes, one of which takes 10x as long per message as the others, and
// each message's latency (from the time it was due to be sent to the end of
// its handling, so that a producer held up does not hide the delay) is
// collected from every worker.
//
// Cases: least (route.LeastDepth), least with no slow worker (the
// baseline), rr (route.RoundRobin: in turn, passing over pressured and full
// rings), plain-rr (message i to ring i mod 4 with a waiting Write, what a
// program without a router does) and unix (the same plain round robin over
// 4 Unix stream sockets).
//
//	go run ./bench/cmd/routebench [--duration 3s] [--rate 25000] [--work 20us] [--slow 10] [--cases least,least-noslow,rr,plain-rr,unix]
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/route"
)

const (
	workers  = 4
	msgSize  = 64
	roleEnv  = "ROUTEBENCH_ROLE"
	capacity = 64 << 10
)

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		if err := worker(role, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "routebench worker:", err)
			os.Exit(2)
		}
		return
	}
	dur := flag.Duration("duration", 3*time.Second, "how long the producer sends, per case")
	rate := flag.Int("rate", 25000, "messages per second the producer sends (on a schedule: a late message counts its wait)")
	work := flag.Duration("work", 20*time.Microsecond, "time a fast worker spends on each message (busy)")
	slow := flag.Int("slow", 10, "the slow worker takes this many times --work")
	cases := flag.String("cases", "least,least-noslow,rr,plain-rr,unix", "cases to run, comma-separated")
	flag.Parse()
	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	fmt.Printf("routebench: %d workers, one %dx slower (%v vs %v per message), %d msgs/s for %v, %d-byte messages, %d KiB rings\n",
		workers, *slow, (*work)*time.Duration(*slow), *work, *rate, *dur, msgSize, capacity>>10)
	fmt.Printf("%-13s %9s %9s %9s %9s %9s  %s\n", "case", "messages", "p50", "p99", "p999", "max", "share per worker (the slow one last)")
	for _, c := range strings.Split(*cases, ",") {
		res, err := run(exe, c, *dur, *rate, *work, *slow)
		if err != nil {
			fail(fmt.Errorf("%s: %w", c, err))
		}
		fmt.Printf("%-13s %9d %9v %9v %9v %9v  %v\n", c, len(res.all), pct(res.all, 50), pct(res.all, 99), pct(res.all, 99.9), pct(res.all, 100), res.share)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "routebench:", err)
	os.Exit(1)
}

type result struct {
	all   []time.Duration
	share []int
}

func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s)-1) * p / 100)
	return s[i].Round(time.Microsecond)
}

// run runs one case: starts the workers, sends, collects.
func run(exe, name string, dur time.Duration, rate int, work time.Duration, slow int) (res result, err error) {
	dir, err := os.MkdirTemp("/dev/shm", "routebench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	unix := name == "unix"
	works := make([]time.Duration, workers)
	for i := range works {
		works[i] = work
	}
	if name != "least-noslow" {
		works[workers-1] = work * time.Duration(slow)
	}
	paths := make([]string, workers)
	var rings []*ipc.Ring
	defer func() {
		for _, r := range rings {
			r.Close()
		}
	}()
	var lns []net.Listener
	for i := range paths {
		paths[i] = filepath.Join(dir, strconv.Itoa(i))
		if unix {
			ln, err := net.Listen("unix", paths[i])
			if err != nil {
				return res, err
			}
			defer ln.Close()
			lns = append(lns, ln)
			continue
		}
		r, err := ipc.Create(paths[i], ipc.Config{Capacity: capacity, HighWater: capacity / 4, LowWater: capacity / 8})
		if err != nil {
			return res, err
		}
		rings = append(rings, r)
	}
	role := "ring"
	if unix {
		role = "unix"
	}
	cmds := make([]*exec.Cmd, workers)
	outs := make([]io.Reader, workers)
	for i := range cmds {
		cmd := exec.Command(exe, paths[i], works[i].String())
		cmd.Env = append(os.Environ(), roleEnv+"="+role)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return res, err
		}
		if err := cmd.Start(); err != nil {
			return res, err
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		cmds[i], outs[i] = cmd, out
	}
	// Each worker says "ready" once attached.
	readers := make([]*bufio.Reader, workers)
	for i, o := range outs {
		readers[i] = bufio.NewReader(o)
		if line, err := readers[i].ReadString('\n'); err != nil || line != "ready\n" {
			return res, fmt.Errorf("worker %d: %q, %v", i, line, err)
		}
	}
	var send func(msg []byte) error
	var finish func() error
	if unix {
		conns := make([]net.Conn, workers)
		for i, ln := range lns {
			if conns[i], err = ln.Accept(); err != nil {
				return res, err
			}
		}
		n := 0
		send = func(msg []byte) error {
			_, err := conns[n%workers].Write(msg)
			n++
			return err
		}
		finish = func() error {
			for _, c := range conns {
				c.Close()
			}
			return nil
		}
	} else {
		ctx := context.Background()
		switch name {
		case "plain-rr":
			ps := make([]*ipc.Producer, workers)
			for i, r := range rings {
				if ps[i], err = r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: time.Minute}}); err != nil {
					return res, err
				}
				defer ps[i].Close()
			}
			n := 0
			send = func(msg []byte) error {
				err := ps[n%workers].Write(ctx, msg)
				n++
				return err
			}
		default:
			by := route.LeastDepth
			if name == "rr" {
				by = route.RoundRobin
			}
			rt, err := route.New(rings, &route.Config{By: by, Sample: time.Millisecond, Wait: ipc.Wait{PeerTimeout: time.Minute}})
			if err != nil {
				return res, err
			}
			defer rt.Close()
			send = func(msg []byte) error { return rt.Send(ctx, msg) }
		}
		finish = func() error {
			// Wait for the rings to drain, then stop the workers.
			for _, r := range rings {
				for {
					st, err := r.Stats()
					if err != nil {
						return err
					}
					if st.Depth == 0 {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			for _, c := range cmds {
				_ = c.Process.Signal(syscall.SIGTERM)
			}
			return nil
		}
	}

	// Open loop: message i is due at start + i/rate and carries that time.
	msg := make([]byte, msgSize)
	total := int(dur.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; i < total; {
		now := time.Now()
		for ; i < total && start.Add(time.Duration(i)*interval).Before(now); i++ {
			due := start.Add(time.Duration(i) * interval)
			binary.LittleEndian.PutUint64(msg, uint64(due.UnixNano()))
			if err := send(msg); err != nil {
				return res, err
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	if err := finish(); err != nil {
		return res, err
	}
	for i, rd := range readers {
		n := 0
		for {
			line, err := rd.ReadString('\n')
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return res, err
			}
			ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			if err != nil {
				return res, fmt.Errorf("worker %d: %q", i, line)
			}
			res.all = append(res.all, time.Duration(ns))
			n++
		}
		res.share = append(res.share, n)
	}
	slices.Sort(res.all)
	return res, nil
}

// worker consumes ARG0 (a ring, or a Unix socket to dial) spending ARG1
// per message, and prints each message's latency (ns) once stopped
// (SIGTERM, or the socket's end).
func worker(role string, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want PATH WORK, got %q", args)
	}
	work, err := time.ParseDuration(args[1])
	if err != nil {
		return err
	}
	var lat []int64
	handle := func(m []byte) {
		due := int64(binary.LittleEndian.Uint64(m))
		for end := time.Now().Add(work); time.Now().Before(end); {
		}
		lat = append(lat, time.Now().UnixNano()-due)
	}
	out := bufio.NewWriter(os.Stdout)
	defer func() {
		for _, l := range lat {
			fmt.Fprintln(out, l)
		}
		out.Flush()
	}()
	if role == "unix" {
		conn, err := net.Dial("unix", args[0])
		if err != nil {
			return err
		}
		defer conn.Close()
		fmt.Fprintln(out, "ready")
		out.Flush()
		br := bufio.NewReaderSize(conn, 64<<10)
		m := make([]byte, msgSize)
		for {
			if _, err := io.ReadFull(br, m); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			handle(m)
		}
	}
	r, err := ipc.Open(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{PeerTimeout: time.Minute}})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintln(out, "ready")
	out.Flush()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	for {
		if _, err := c.Read(ctx, 1, handle); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
