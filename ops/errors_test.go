package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestErrReadOnly: on a ring opened read-only, every operation that
// writes the segment returns an error matching ErrReadOnly and changes
// nothing, and so does taking a producer or consumer role (saying to open
// it without WithReadOnly, and matching fs.ErrPermission too, for an
// ipc-only caller), and so does a repair by Doctor with nothing to repair
// (the caller asked for a write); the reading operations work.
func TestErrReadOnly(t *testing.T) {
	for _, kind := range []ipc.Kind{ipc.SPSC, ipc.MPSC} {
		t.Run(string(kind), func(t *testing.T) {
			r := create(t, ipc.Config{Kind: kind, Capacity: 4096, Timestamps: true})
			produce(t, r, nil, "kept")
			ro := open(t, r.Path(), ipc.WithReadOnly())
			for name, f := range map[string]func() error{
				"SetPolicy":         func() error { return ops.SetPolicy(ro, ops.Park, ops.Park) },
				"ResetHighWater":    func() error { return ops.ResetHighWater(ro) },
				"SetPressureLevels": func() error { return ops.SetPressureLevels(ro, 0, 0) },
				"SetTargetDelay":    func() error { return ops.SetTargetDelay(ro, 0, 0) },
				"Producer":          func() error { _, err := ro.Producer(nil); return err },
				"Consumer":          func() error { _, err := ro.Consumer(nil); return err },
				"Doctor(repair)":    func() error { d, err := ops.Doctor(ro, true); require.Zero(t, d); return err },
			} {
				err := f()
				require.ErrorIs(t, err, ops.ErrReadOnly, name)
				require.ErrorIs(t, err, fs.ErrPermission, name)
				require.Contains(t, err.Error(), r.Path(), "%s: the error names the ring", name)
				require.Contains(t, err.Error(), "without", "%s: the error says to open it without WithReadOnly", name)
			}
			d, err := ops.Doctor(ro, false)
			require.NoError(t, err)
			require.Equal(t, 1, d.Pending)
			recs, err := ops.Peek(ro, 10)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			st, err := ro.Stats()
			require.NoError(t, err)
			require.Empty(t, st.ProducerOverride)
		})
	}
}

// TestErrFaultTruncated: another process truncates a ring's file after
// this process mapped it (here through a descriptor of its own). Every
// operation of ops, and ipc's Stats, returns an error matching both
// ipc.ErrCorrupt and ErrFault that says to what size, from what, and what
// to do, instead of touching the missing pages (which would kill this
// process with SIGBUS); Doctor returns no diagnosis. List, opening it
// afresh, reports ipc.ErrCorrupt.
func TestErrFaultTruncated(t *testing.T) {
	for _, kind := range []ipc.Kind{ipc.SPSC, ipc.MPSC} {
		t.Run(string(kind), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "r")
			r, err := ipc.Create(path, ipc.Config{Kind: kind, Capacity: 1 << 14, Timestamps: true})
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Close() })
			produce(t, r, nil, "one", "two") // closed: no heartbeat touches the segment
			ro := open(t, path, ipc.WithReadOnly())
			h := ops.Header(r)
			size := int64(shm.HeaderSize + 512)
			require.NoError(t, os.Truncate(path, size))

			for name, f := range map[string]func() error{
				"Peek":              func() error { _, err := ops.Peek(ro, 10); return err },
				"Doctor":            func() error { d, err := ops.Doctor(ro, false); require.Zero(t, d); return err },
				"Doctor(repair)":    func() error { d, err := ops.Doctor(r, true); require.Zero(t, d); return err },
				"Slot":              func() error { _, err := ops.Slot(ro, 0); return err },
				"Routing":           func() error { _, err := ops.Routing(ro); return err },
				"SetPolicy":         func() error { return ops.SetPolicy(r, ops.Park, ops.Park) },
				"ResetHighWater":    func() error { return ops.ResetHighWater(r) },
				"SetPressureLevels": func() error { return ops.SetPressureLevels(r, 0, 0) },
				"SetTargetDelay":    func() error { return ops.SetTargetDelay(r, 0, 0) },
				"Stats":             func() error { _, err := ro.Stats(); return err },
			} {
				if name == "Slot" && kind == ipc.SPSC {
					continue // no slots: fs.ErrInvalid before anything is read
				}
				err := f()
				require.ErrorIs(t, err, ipc.ErrCorrupt, name)
				require.ErrorIs(t, err, ops.ErrFault, name)
				require.Contains(t, err.Error(), fmt.Sprintf("truncated to %d bytes from %d", size, h.TotalSize), name)
				require.Contains(t, err.Error(), "recreate it", name)
			}
			list, err := ops.List(dir)
			require.NoError(t, err)
			require.Len(t, list, 1)
			require.ErrorIs(t, list[0].Err, ipc.ErrCorrupt)
		})
	}
}

// TestClosedAndNil: after the ring's Close every operation returns
// ipc.ErrClosed (Header still answers: it reads no shared memory); a nil
// ring is fs.ErrInvalid, not a panic.
func TestClosedAndNil(t *testing.T) {
	r := create(t, ipc.Config{Kind: ipc.MPSC, Capacity: 4096})
	require.NoError(t, r.Close())
	var nilRing *ipc.Ring
	for _, tc := range []struct {
		r    *ipc.Ring
		want error
	}{{r, ipc.ErrClosed}, {nilRing, fs.ErrInvalid}} {
		for name, f := range map[string]func() error{
			"Peek":              func() error { _, err := ops.Peek(tc.r, 10); return err },
			"Doctor":            func() error { _, err := ops.Doctor(tc.r, false); return err },
			"Slot":              func() error { _, err := ops.Slot(tc.r, 0); return err },
			"Routing":           func() error { _, err := ops.Routing(tc.r); return err },
			"SetPolicy":         func() error { return ops.SetPolicy(tc.r, ops.Park, ops.Park) },
			"ResetHighWater":    func() error { return ops.ResetHighWater(tc.r) },
			"SetPressureLevels": func() error { return ops.SetPressureLevels(tc.r, 0, 0) },
			"SetTargetDelay":    func() error { return ops.SetTargetDelay(tc.r, 0, 0) },
		} {
			require.ErrorIs(t, f(), tc.want, name)
		}
	}
	require.NotZero(t, ops.Header(r).TotalSize)
}

// faultResult is one line of holePunchChild's report.
type faultResult struct {
	Op      string `json:"op"`
	Err     string `json:"err"`
	Corrupt bool   `json:"corrupt"`
	Fault   bool   `json:"fault"`
}

// holePunchChild runs in a mount namespace of its own (the parent starts
// it under unshare -m): it mounts a small tmpfs on $OPS_T_DIR, makes an
// MPSC ring there, punches a hole over its control block and slot table,
// fills the tmpfs so the hole cannot be backed again, and runs every
// operation of ops on it, printing one faultResult per line. Each touch of
// the hole is SIGBUS, although the file keeps its size: a fault that
// escaped would kill this process.
func holePunchChild() error {
	dir := os.Getenv("OPS_T_DIR")
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	r, err := ipc.Create(filepath.Join(dir, "ring"), ipc.Config{Kind: ipc.MPSC, Capacity: 1 << 14, Producers: 4})
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
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, shm.HeaderSize, 8192); err != nil {
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
		res := faultResult{Op: op}
		if err != nil {
			res.Err, res.Corrupt, res.Fault = err.Error(), errors.Is(err, ipc.ErrCorrupt), errors.Is(err, ops.ErrFault)
		}
		_ = enc.Encode(res)
	}
	_, err = ops.Peek(r, 10)
	report("peek", err)
	_, err = ops.Doctor(r, false)
	report("doctor", err)
	_, err = ops.Doctor(r, true)
	report("doctor-repair", err)
	_, err = ops.Slot(r, 0)
	report("slot", err)
	_, err = ops.Routing(r)
	report("routing", err)
	report("policy", ops.SetPolicy(r, ops.Park, ops.Park))
	report("reset", ops.ResetHighWater(r))
	report("pressure", ops.SetPressureLevels(r, 0, 0))
	_, err = r.Stats()
	report("stats", err)
	return nil
}

// TestErrFaultHolePunched: reading a page of the segment faults although
// the file keeps its size (a hole punched in it on a full tmpfs). Every
// operation of ops returns an error matching ipc.ErrCorrupt and ErrFault
// that says so, in a child process (in a mount namespace of its own, with
// a small tmpfs) that must not crash.
func TestErrFaultHolePunched(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs in a mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1): ", err)
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(testutil.ChildDeadline(t), unshare, "-m", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=hole-punch", "OPS_T_DIR="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && strings.Contains(stderr.String(), "unshare failed") {
		t.Skipf("unshare refused here: %s", stderr.String())
	}
	require.NoError(t, err, "the inspecting process must not crash; its stderr:\n%s", stderr.String())
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var seen []string
	for dec.More() {
		var res faultResult
		require.NoError(t, dec.Decode(&res))
		seen = append(seen, res.Op)
		require.True(t, res.Corrupt, "%s: want ErrCorrupt, got %q", res.Op, res.Err)
		require.True(t, res.Fault, "%s: want ErrFault, got %q", res.Op, res.Err)
		require.Contains(t, res.Err, "faulted", res.Op)
		require.Contains(t, res.Err, "although the file still has its full size", res.Op)
		require.Contains(t, res.Err, "recreate it", res.Op)
	}
	require.Equal(t, []string{"peek", "doctor", "doctor-repair", "slot", "routing", "policy", "reset", "pressure", "stats"}, seen)
}
