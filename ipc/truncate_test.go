package ipc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// inspectResult is one line of inspectTruncatedChild's report: what one
// inspection path returned for one ring.
type inspectResult struct {
	Ring    string `json:"ring"`
	Op      string `json:"op"`
	Err     string `json:"err"`
	Corrupt bool   `json:"corrupt"`
	Fault   bool   `json:"fault"` // errors.Is(err, ops.ErrFault): a memory fault, typed (hole-punch child)
	Value   int    `json:"value"` // collectors: samples exported for the rings / unreadable count
}

// inspectTruncatedChild opens every ring in $SHMRING_T_DIR (read-only, and
// read-write for the paths that write), says "ready", waits for a line on
// stdin (the parent truncates the files meanwhile, through descriptors of
// its own), then runs every inspection path on every ring and prints one
// inspectResult per line. A memory fault that escaped would kill this
// process, not the test binary.
func inspectTruncatedChild() error {
	dir := os.Getenv("SHMRING_T_DIR")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type pair struct{ ro, rw *ipc.Ring }
	rings := map[string]pair{}
	var names []string
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		ro, err := ipc.Open(path, ipc.WithReadOnly())
		if err != nil {
			return err
		}
		rw, err := ipc.Open(path)
		if err != nil {
			return err
		}
		rings[e.Name()] = pair{ro, rw}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	roRings := map[string]*ipc.Ring{}
	for n, p := range rings {
		roRings[n] = p.ro
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	report := func(ring, op string, err error, value int) {
		res := inspectResult{Ring: ring, Op: op, Value: value}
		if err != nil {
			res.Err, res.Corrupt = err.Error(), errors.Is(err, ipc.ErrCorrupt)
		}
		_ = enc.Encode(res)
	}
	for _, n := range names {
		ro, rw := rings[n].ro, rings[n].rw
		_, err := ro.Stats()
		report(n, "stats", err, 0)
		_, err = ops.Peek(ro, 1000)
		report(n, "peek", err, 0)
		_, err = ops.Doctor(ro, false)
		report(n, "doctor", err, 0)
		_, err = ops.Doctor(rw, true)
		report(n, "doctor-repair", err, 0)
		report(n, "reset", ops.ResetHighWater(rw), 0)
		report(n, "policy", ops.SetPolicy(rw, ops.Park, ops.Park), 0)
		report(n, "pressure", ops.SetPressureLevels(rw, 0, 0), 0)
	}
	list, err := ops.List(dir)
	if err != nil {
		return err
	}
	for _, ri := range list {
		report(ri.Name, "list", ri.Err, 0)
	}
	samples := func(c prometheus.Collector) (int, int) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			panic(err)
		}
		exported, unreadable := 0, -1
		for _, mf := range mfs {
			if mf.GetName() == "shmring_unreadable_segments" {
				unreadable = int(mf.GetMetric()[0].GetGauge().GetValue())
				continue
			}
			if mf.GetName() == "shmring_damaged_segments" {
				continue // of the directory, not a ring's: a truncated ring is unreadable, not damaged
			}
			exported += len(mf.GetMetric())
		}
		return exported, unreadable
	}
	exported, _ := samples(metrics.NewCollector(roRings))
	report("", "collector", nil, exported)
	exported, unreadable := samples(metrics.NewDirCollector(dir))
	report("", "dircollector-exported", nil, exported)
	report("", "dircollector-unreadable", nil, unreadable)
	for _, p := range rings {
		_ = p.ro.Close()
		_ = p.rw.Close()
	}
	return nil
}

// TestInspectTruncated: another process truncates a live segment file
// (through its own descriptor) to sizes from 0 to inside the data area,
// after a process mapped it. In that process, every inspection path (Stats,
// ops' Peek, Doctor with and without repair, ResetHighWater, SetPolicy,
// SetPressureLevels, List, the Prometheus collectors) returns ErrCorrupt
// saying the file was truncated, to what and from what, and what to do; a
// collector leaves the ring out. None crashes (it runs in a child process,
// so a SIGBUS would fail this test, not kill the test binary), and none
// reports success on what is left of the file.
func TestInspectTruncated(t *testing.T) {
	for _, kind := range []ipc.Kind{ipc.SPSC, ipc.MPSC} {
		t.Run(string(kind), func(t *testing.T) {
			dir := filepath.Join("/dev/shm", testutil.Name(t))
			require.NoError(t, os.Mkdir(dir, 0o700))
			t.Cleanup(func() { _ = os.RemoveAll(dir) })

			// Sizes to truncate to, by case; the data area's offset in the
			// file comes from the header once a ring exists.
			// A drained ring has no pending record for Peek to fault on,
			// so the inspection goes on to the slot table.
			type trunc struct {
				name    string
				size    func(dataOff int64) int64
				drained bool
			}
			cases := []trunc{
				{"empty", func(int64) int64 { return 0 }, false},
				{"in-header", func(int64) int64 { return 100 }, false},
				{"in-control-block", func(int64) int64 { return shm.HeaderSize + 512 }, false},
				{"in-control-block-drained", func(int64) int64 { return shm.HeaderSize + 512 }, true},
				{"in-data-first-page", func(d int64) int64 { return d + 64 }, false},
				{"in-data-page-boundary", func(d int64) int64 { return d + 4096 }, false},
			}
			if kind == ipc.MPSC {
				cases = append(cases,
					trunc{"in-slot-table", func(int64) int64 { return shm.HeaderSize + 4096 + 64 }, false},
					trunc{"before-slot-table-drained", func(int64) int64 { return shm.HeaderSize + 4096 }, true})
			}
			want := map[string][2]int64{} // ring -> truncated size, original size
			for _, c := range cases {
				path := filepath.Join(dir, c.name)
				r, err := ipc.Create(path, ipc.Config{Capacity: 1 << 14, Kind: kind})
				require.NoError(t, err)
				var pcfg *ipc.ProducerConfig
				if kind == ipc.MPSC {
					pcfg = &ipc.ProducerConfig{ID: 4} // slot 3
				}
				p, err := r.Producer(pcfg)
				require.NoError(t, err)
				for i := 0; i < 40; i++ { // 40 records of 208 bytes: three pages of the data area
					require.NoError(t, p.Write(context.Background(), []byte(strings.Repeat(fmt.Sprint(i%10), 200))))
				}
				require.NoError(t, p.Close())
				if c.drained {
					cons, err := r.Consumer(nil)
					require.NoError(t, err)
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					for got := 0; got < 40; {
						n, err := cons.Read(ctx, 64, func([]byte) {})
						require.NoError(t, err)
						got += n
					}
					cancel()
					require.NoError(t, cons.Close())
				}
				h := ops.Header(r)
				st, err := r.Stats()
				require.NoError(t, err)
				dataOff := int64(shm.HeaderSize + h.BodySize - st.Capacity)
				want[c.name] = [2]int64{c.size(dataOff), int64(h.TotalSize)}
				require.NoError(t, r.Close())
			}

			cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=inspect-truncated", "SHMRING_T_DIR="+dir)
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			sc := bufio.NewScanner(stdout)
			require.True(t, sc.Scan(), "child did not start: %s", stderr.String())
			require.Equal(t, "ready", sc.Text())

			for name, w := range want {
				f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0)
				require.NoError(t, err)
				require.NoError(t, f.Truncate(w[0]))
				require.NoError(t, f.Close())
			}
			_, err = stdin.Write([]byte("go\n"))
			require.NoError(t, err)

			var results []inspectResult
			for sc.Scan() {
				var res inspectResult
				require.NoError(t, json.Unmarshal(sc.Bytes(), &res), sc.Text())
				results = append(results, res)
			}
			err = cmd.Wait()
			require.NoError(t, err, "the inspecting process must not crash; its stderr:\n%s", stderr.String())

			seen := map[string]int{}
			var problems []string
			for _, res := range results {
				switch res.Op {
				case "collector", "dircollector-exported":
					if res.Value != 0 {
						problems = append(problems, fmt.Sprintf("%s exported %d samples of truncated rings", res.Op, res.Value))
					}
					continue
				case "dircollector-unreadable":
					if res.Value != len(cases) {
						problems = append(problems, fmt.Sprintf("%s: %d truncated rings counted unreadable, want %d", res.Op, res.Value, len(cases)))
					}
					continue
				}
				w, ok := want[res.Ring]
				require.True(t, ok, "unexpected ring %q", res.Ring)
				seen[res.Op]++
				wantText := []string{fmt.Sprintf("truncated to %d bytes from %d", w[0], w[1]), "recreate it"}
				if res.Op == "list" && w[0] < shm.HeaderSize {
					// A fresh opener sees no header, so no original size.
					wantText = []string{fmt.Sprintf("file of %d bytes is smaller than the 4096-byte segment header", w[0]), "truncated"}
				}
				switch {
				case res.Err == "":
					problems = append(problems, fmt.Sprintf("%s on %s: succeeded", res.Op, res.Ring))
				case !res.Corrupt:
					problems = append(problems, fmt.Sprintf("%s on %s: not ErrCorrupt: %s", res.Op, res.Ring, res.Err))
				default:
					for _, w := range wantText {
						if !strings.Contains(res.Err, w) {
							problems = append(problems, fmt.Sprintf("%s on %s: error lacks %q: %s", res.Op, res.Ring, w, res.Err))
						}
					}
				}
			}
			require.Empty(t, problems)
			for _, op := range []string{"stats", "peek", "doctor", "doctor-repair", "reset", "policy", "pressure", "list"} {
				require.Equal(t, len(cases), seen[op], "results of %s", op)
			}
		})
	}
}

// holePunchChild runs in a mount namespace of its own (the parent starts
// it under unshare -m): it mounts a 256 KiB tmpfs on $SHMRING_T_DIR, makes
// a ring there, punches a hole over its control block, fills the tmpfs so
// the hole cannot be backed again, and runs the inspection paths, printing
// one inspectResult per line. A fault that escaped would kill it.
func holePunchChild() error {
	dir := os.Getenv("SHMRING_T_DIR")
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	r, err := ipc.Create(filepath.Join(dir, "ring"), ipc.Config{Capacity: 1 << 14, Kind: ipc.MPSC})
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Producer(nil)
	if err != nil {
		return err
	}
	if err := p.Write(context.Background(), []byte("before the hole")); err != nil {
		return err
	}
	if err := p.Close(); err != nil {
		return err
	}
	f, err := os.OpenFile(r.Path(), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, shm.HeaderSize, 4096); err != nil {
		return fmt.Errorf("punch: %w", err)
	}
	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		return err
	}
	defer fill.Close()
	for off := int64(0); unix.Fallocate(int(fill.Fd()), 0, off, 4096) == nil; off += 4096 {
	}
	enc := json.NewEncoder(os.Stdout)
	report := func(op string, err error) {
		res := inspectResult{Ring: "ring", Op: op}
		if err != nil {
			res.Err, res.Corrupt, res.Fault = err.Error(), errors.Is(err, ipc.ErrCorrupt), errors.Is(err, ops.ErrFault)
		}
		_ = enc.Encode(res)
	}
	_, err = r.Stats()
	report("stats", err)
	_, err = ops.Peek(r, 10)
	report("peek", err)
	_, err = ops.Doctor(r, false)
	report("doctor", err)
	return nil
}

// TestInspectHolePunched: a process that can write a segment on a tmpfs
// punches a hole in it and fills the file system, so the hole cannot be
// backed: every touch of it is SIGBUS although the file keeps its size.
// The inspection paths report ErrCorrupt saying so, and ops.ErrFault (the
// memory fault, typed), in a child process (in a mount namespace of its
// own, with a small tmpfs) that must not crash.
func TestInspectHolePunched(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs in a mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1): ", err)
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(testutil.ChildDeadline(t), unshare, "-m", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=hole-punch", "SHMRING_T_DIR="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && strings.Contains(stderr.String(), "unshare failed") {
		t.Skipf("unshare refused here: %s", stderr.String())
	}
	require.NoError(t, err, "the inspecting process must not crash; its stderr:\n%s", stderr.String())
	dec := json.NewDecoder(strings.NewReader(string(out)))
	ops := 0
	for dec.More() {
		var res inspectResult
		require.NoError(t, dec.Decode(&res))
		ops++
		require.True(t, res.Corrupt, "%s: want ErrCorrupt, got %q", res.Op, res.Err)
		require.True(t, res.Fault, "%s: want ops.ErrFault (a typed memory fault), got %q", res.Op, res.Err)
		require.Contains(t, res.Err, "faulted", res.Op)
		require.Contains(t, res.Err, "although the file still has its full size", res.Op)
		require.Contains(t, res.Err, "recreate it", res.Op)
	}
	require.Equal(t, 3, ops)
}
