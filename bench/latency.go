package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shmring/shmring/internal/demo"
	"github.com/shmring/shmring/internal/futex"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/shm"
)

// LatencyCase is a round trip between two processes: a pinger sends a
// 64-byte message, an echoer sends it back, one at a time.
type LatencyCase struct {
	Name string
	run  func(exe string, n int) (LatencyResult, error)
}

// LatencyResult summarises n round trips.
type LatencyResult struct {
	N                    int
	P50, P99, P999, Max  time.Duration
	CPUPerRoundTrip      time.Duration // user+system time of both processes, divided by N
	PingerCPU, EchoerCPU time.Duration
}

// LatencyCases returns the round-trip cases: shmring with both sides
// spinning, parking and hybrid, against the C references (a 64-byte message
// through two C rings of 64-byte slots, spinning, or spinning 2000 pauses,
// as shmring's hybrid does before it yields, then sleeping on a futex; a
// bare word ping-ponged spinning, the cache-line floor; a word with each
// side sleeping at once), a raw futex ping-pong between two Go processes
// and a Unix domain socket.
func LatencyCases() []LatencyCase {
	return []LatencyCase{
		{"shmring-spin", shmLatency("spin", ipc.Config{})},
		{"shmring-spin-hc", shmLatency("spin", ipc.Config{HeaderCommit: true})},
		{"c-ring-spin", cringLatency("-rrt", -1)},
		{"c-spin", cringLatency("-rt", 0)},
		{"shmring-hybrid", shmLatency("hybrid", ipc.Config{})},
		{"shmring-hybrid-hc", shmLatency("hybrid", ipc.Config{HeaderCommit: true})},
		{"c-ring-hybrid", cringLatency("-rrt", hybridSpins)},
		{"shmring-park", shmLatency("park", ipc.Config{})},
		{"futex", futexLatency},
		{"c-park", cringLatency("-hrt", 0)},
		{"unix-stream", unixLatency},
	}
}

// hybridSpins is the spin phase of the C spin-then-park reference: the
// pauses shmring's default hybrid policy spins before it yields.
const hybridSpins = 2000

// Run measures n round trips.
func (c LatencyCase) Run(exe string, n int) (LatencyResult, error) {
	r, err := c.run(exe, n)
	if err != nil {
		return r, fmt.Errorf("%s: %w", c.Name, err)
	}
	return r, nil
}

// Child roles of the latency cases.
const (
	RoleShmPing   = "lat-shm-ping"
	RoleShmEcho   = "lat-shm-echo"
	RoleFutexPing = "lat-futex-ping"
	RoleFutexEcho = "lat-futex-echo"
	RoleUnixPing  = "lat-unix-ping"
	RoleUnixEcho  = "lat-unix-echo"
)

// latencyPair starts the echoer, waits for its "ready", runs the pinger and
// combines what both print.
func latencyPair(exe, echoRole, pingRole string, args ...string) (LatencyResult, error) {
	echo := exec.Command(exe, append([]string{ChildArg, echoRole}, args...)...)
	echo.Stderr = os.Stderr
	eout, err := echo.StdoutPipe()
	if err != nil {
		return LatencyResult{}, err
	}
	if err := echo.Start(); err != nil {
		return LatencyResult{}, err
	}
	defer echo.Process.Kill()
	es := bufio.NewScanner(eout)
	if !es.Scan() || es.Text() != "ready" {
		return LatencyResult{}, fmt.Errorf("echoer did not start: %v", echo.Wait())
	}
	ping := exec.Command(exe, append([]string{ChildArg, pingRole}, args...)...)
	ping.Stderr = os.Stderr
	out, err := ping.Output()
	if err != nil {
		return LatencyResult{}, fmt.Errorf("pinger: %w", err)
	}
	var r LatencyResult
	var p50, p99, p999, mx, pcpu int64
	if _, err := fmt.Sscan(string(out), &r.N, &p50, &p99, &p999, &mx, &pcpu); err != nil {
		return r, fmt.Errorf("pinger said %q", out)
	}
	if !es.Scan() {
		return r, fmt.Errorf("echoer: %v", echo.Wait())
	}
	ecpu, err := strconv.ParseInt(es.Text(), 10, 64)
	if err != nil {
		return r, fmt.Errorf("echoer said %q", es.Text())
	}
	_ = echo.Wait()
	r.P50, r.P99, r.P999, r.Max = time.Duration(p50), time.Duration(p99), time.Duration(p999), time.Duration(mx)
	r.PingerCPU, r.EchoerCPU = time.Duration(pcpu), time.Duration(ecpu)
	r.CPUPerRoundTrip = (r.PingerCPU + r.EchoerCPU) / time.Duration(max(r.N, 1))
	return r, nil
}

// cpuTime is this process's user plus system time so far.
func cpuTime() time.Duration { return demo.CPUTime() }

// report prints the pinger's summary: n p50 p99 p99.9 max cpu (ns).
func report(samples []time.Duration, cpu time.Duration) {
	slices.Sort(samples)
	q := func(f float64) int64 { return int64(samples[min(len(samples)-1, int(f*float64(len(samples))))]) }
	fmt.Println(len(samples), q(0.5), q(0.99), q(0.999), int64(samples[len(samples)-1]), int64(cpu))
}

// waitFor returns the wait a latency or idle child uses for policy, the
// name the harness passes on its command line: spin, yield, park or hybrid
// (ipc's Strategy values, named as ringctl policy names them).
func waitFor(policy string) (ipc.Wait, error) {
	switch policy {
	case "spin":
		return ipc.Wait{Strategy: ipc.Spin}, nil
	case "yield":
		return ipc.Wait{Strategy: ipc.Yield}, nil
	case "park":
		return ipc.Wait{Strategy: ipc.Park}, nil
	case "hybrid":
		return ipc.Wait{Strategy: ipc.Hybrid}, nil
	}
	return ipc.Wait{}, fmt.Errorf("wait policy %q: use spin, yield, park or hybrid", policy)
}

// shmLatency is a round trip through two rings created as cfg says (with a
// 64 KiB data area), both sides waiting as policy says (see waitFor).
func shmLatency(policy string, cfg ipc.Config) func(string, int) (LatencyResult, error) {
	return func(exe string, n int) (LatencyResult, error) {
		dir, err := shmDir()
		if err != nil {
			return LatencyResult{}, err
		}
		defer os.RemoveAll(dir)
		for _, name := range []string{"ping", "pong"} {
			cfg := cfg
			cfg.Capacity = 1 << 16
			r, err := ipc.Create(filepath.Join(dir, name), cfg)
			if err != nil {
				return LatencyResult{}, err
			}
			defer r.Close()
		}
		return latencyPair(exe, RoleShmEcho, RoleShmPing, dir, strconv.Itoa(n), policy)
	}
}

func shmLatencyChild(role, dir string, n int, policy string) error {
	wait, err := waitFor(policy)
	if err != nil {
		return err
	}
	in, out := "ping", "pong"
	if role == RoleShmPing {
		in, out = "pong", "ping"
	}
	rin, err := ipc.Open(filepath.Join(dir, in))
	if err != nil {
		return err
	}
	defer rin.Close()
	rout, err := ipc.Open(filepath.Join(dir, out))
	if err != nil {
		return err
	}
	defer rout.Close()
	cwait := wait
	cwait.PeerTimeout = time.Minute // the echoer waits before its pinger has started
	c, err := rin.Consumer(&ipc.ConsumerConfig{Wait: cwait})
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := rout.Producer(&ipc.ProducerConfig{Wait: wait})
	if err != nil {
		return err
	}
	defer p.Close()
	ctx := context.Background()
	msg := make([]byte, 64)
	var got uint64
	take := func(m []byte) { got = binary.LittleEndian.Uint64(m) }
	if role == RoleShmEcho {
		fmt.Println("ready")
		cpu0 := cpuTime()
		for i := 0; i < n; i++ {
			if _, err := c.Read(ctx, 1, take); err != nil {
				return err
			}
			binary.LittleEndian.PutUint64(msg, got)
			if err := p.Write(ctx, msg); err != nil {
				return err
			}
		}
		fmt.Println(int64(cpuTime() - cpu0))
		return nil
	}
	samples := make([]time.Duration, 0, n)
	cpu0 := cpuTime()
	for i := 0; i < n; i++ {
		start := time.Now()
		binary.LittleEndian.PutUint64(msg, uint64(i))
		if err := p.Write(ctx, msg); err != nil {
			return err
		}
		if _, err := c.Read(ctx, 1, take); err != nil {
			return err
		}
		samples = append(samples, time.Since(start))
		if got != uint64(i) {
			return fmt.Errorf("echo %d for %d", got, i)
		}
	}
	report(samples, cpuTime()-cpu0)
	return nil
}

// futexLatency is the floor for a parked round trip: two words in a shared
// mapping, each side sleeping on one with FUTEX_WAIT and waking the other.
func futexLatency(exe string, n int) (LatencyResult, error) {
	dir, err := shmDir()
	if err != nil {
		return LatencyResult{}, err
	}
	defer os.RemoveAll(dir)
	seg, err := shm.Create(filepath.Join(dir, "futex"), 4096, nil)
	if err != nil {
		return LatencyResult{}, err
	}
	defer seg.Close()
	return latencyPair(exe, RoleFutexEcho, RoleFutexPing, seg.Path(), strconv.Itoa(n), "-")
}

func futexLatencyChild(role, path string, n int) error {
	seg, err := shm.Open(path)
	if err != nil {
		return err
	}
	defer seg.Close()
	ping, pong := word32(seg.Body(), 0), word32(seg.Body(), 128)
	wait := func(w interface {
		Load() uint32
	}, want uint32, fw func() error) error {
		for w.Load() != want {
			if err := fw(); err != nil {
				return err
			}
		}
		return nil
	}
	if role == RoleFutexEcho {
		fmt.Println("ready")
		cpu0 := cpuTime()
		for i := uint32(1); i <= uint32(n); i++ {
			if err := wait(ping, i, func() error { return futex.Wait(ping, i-1, time.Second) }); err != nil {
				return err
			}
			pong.Store(i)
			if _, err := futex.Wake(pong, 1); err != nil {
				return err
			}
		}
		fmt.Println(int64(cpuTime() - cpu0))
		return nil
	}
	samples := make([]time.Duration, 0, n)
	cpu0 := cpuTime()
	for i := uint32(1); i <= uint32(n); i++ {
		start := time.Now()
		ping.Store(i)
		if _, err := futex.Wake(ping, 1); err != nil {
			return err
		}
		if err := wait(pong, i, func() error { return futex.Wait(pong, i-1, time.Second) }); err != nil {
			return err
		}
		samples = append(samples, time.Since(start))
	}
	report(samples, cpuTime()-cpu0)
	return nil
}

func unixLatency(exe string, n int) (LatencyResult, error) {
	dir, err := os.MkdirTemp("", "shmbench-")
	if err != nil {
		return LatencyResult{}, err
	}
	defer os.RemoveAll(dir)
	return latencyPair(exe, RoleUnixEcho, RoleUnixPing, filepath.Join(dir, "sock"), strconv.Itoa(n), "-")
}

func unixLatencyChild(role, path string, n int) error {
	msg := make([]byte, 64)
	if role == RoleUnixEcho {
		ln, err := net.Listen("unix", path)
		if err != nil {
			return err
		}
		defer ln.Close()
		fmt.Println("ready")
		cpu0 := cpuTime()
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		defer conn.Close()
		for i := 0; i < n; i++ {
			if _, err := io.ReadFull(conn, msg); err != nil {
				return err
			}
			if _, err := conn.Write(msg); err != nil {
				return err
			}
		}
		fmt.Println(int64(cpuTime() - cpu0))
		return nil
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	defer conn.Close()
	samples := make([]time.Duration, 0, n)
	cpu0 := cpuTime()
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, msg); err != nil {
			return err
		}
		samples = append(samples, time.Since(start))
	}
	report(samples, cpuTime()-cpu0)
	return nil
}

// runLatencyChild dispatches the latency roles: ARG N POLICY.
func runLatencyChild(role string, args []string) (bool, error) {
	if role == RoleIdle && len(args) == 3 {
		d, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return true, err
		}
		return true, idleChild(args[0], time.Duration(d), args[2])
	}
	switch role {
	case RoleShmPing, RoleShmEcho, RoleFutexPing, RoleFutexEcho, RoleUnixPing, RoleUnixEcho:
	default:
		return false, nil
	}
	if len(args) != 3 {
		return true, fmt.Errorf("child %s: want ARG N POLICY", role)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		return true, fmt.Errorf("child %s: bad N %q", role, args[1])
	}
	switch role {
	case RoleShmPing, RoleShmEcho:
		return true, shmLatencyChild(role, args[0], n, args[2])
	case RoleFutexPing, RoleFutexEcho:
		return true, futexLatencyChild(role, args[0], n)
	default:
		return true, unixLatencyChild(role, args[0], n)
	}
}

// IdleCPU measures what a parked consumer with nothing to do costs: a
// consumer process waits (policy park, or hybrid) on an empty ring for d,
// and reports its CPU time as a fraction of one core.
func IdleCPU(exe string, policy string, d time.Duration) (float64, error) {
	dir, err := shmDir()
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "idle")
	r, err := ipc.Create(path, ipc.Config{Capacity: 1 << 12})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	p, err := r.Producer(nil) // attached, silent: the consumer must not give up
	if err != nil {
		return 0, err
	}
	defer p.Close()
	out, err := exec.Command(exe, ChildArg, RoleIdle, path, strconv.FormatInt(int64(d), 10), policy).Output()
	if err != nil {
		return 0, fmt.Errorf("idle consumer: %w", err)
	}
	cpu, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("idle consumer said %q", out)
	}
	return float64(cpu) / float64(d), nil
}

// RoleIdle is the idle consumer of IdleCPU.
const RoleIdle = "idle-consumer"

func idleChild(path string, d time.Duration, policy string) error {
	wait, err := waitFor(policy)
	if err != nil {
		return err
	}
	r, err := ipc.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: wait})
	if err != nil {
		return err
	}
	defer c.Close()
	cpu0 := cpuTime()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err = c.Read(ctx, 1, func([]byte) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("idle consumer: %v", err)
	}
	fmt.Println(int64(cpuTime() - cpu0))
	return nil
}
