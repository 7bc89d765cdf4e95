package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// writeDeadReservation leaves, in the MPSC ring at path, a reservation of
// slot 0 that its producer process never committed: a child process claims
// and is SIGKILLed.
func writeDeadReservation(t *testing.T, path string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RINGCTL_TEST_CLAIM="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 7)
	_, err = out.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "claimed", string(buf))
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
}

// claimChild claims a record in slot 0, "held-claim", and waits to be
// killed; with RINGCTL_TEST_CLAIM_HOLD set, it commits when a line arrives
// on stdin instead, and exits.
func claimChild(path string) {
	r, err := ipc.Open(path)
	if err != nil {
		panic(err)
	}
	p, err := r.Producer(&ipc.ProducerConfig{ID: 1}) // slot 0
	if err != nil {
		panic(err)
	}
	b, err := p.Claim(context.Background(), 10)
	if err != nil {
		panic(err)
	}
	copy(b, "held-claim")
	os.Stdout.WriteString("claimed")
	if os.Getenv("RINGCTL_TEST_CLAIM_HOLD") == "" {
		select {}
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		panic(err)
	}
	if err := p.Commit(len(b)); err != nil {
		panic(err)
	}
	os.Stdout.WriteString("committed")
	os.Exit(0)
}

// TestDoctorLeavesNamespacedProducer: a producer in another PID namespace
// (a container sharing the ring's directory) holding a claim is alive to
// stat and doctor (healthy; its idle reservation noted as a live
// producer's stall, never reported as a dead one's), and doctor --repair
// leaves its reservation, which is then committed and delivered before the
// message behind it.
func TestDoctorLeavesNamespacedProducer(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "m", "--size", "4KiB", "--kind", "mpsc", "--producers", "2", "--dir", dir).code)
	path := filepath.Join(dir, "m")
	cmd := testutil.InPIDNamespace(t, "-test.run=^$")
	cmd.Env = append(os.Environ(), "RINGCTL_TEST_CLAIM="+path, "RINGCTL_TEST_CLAIM_HOLD=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 7)
	_, err = io.ReadFull(out, buf)
	require.NoError(t, err)
	require.Equal(t, "claimed", string(buf))
	require.Zero(t, ringctl(t, "after\n", "send", "m", "--dir", dir, "--id", "1").code)

	r := ringctl(t, "", "stat", "m", "--json", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	var st statReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	require.NotEmpty(t, st.Producers)
	require.Equal(t, 0, st.Producers[0].Slot)
	require.True(t, st.Producers[0].Alive, "stat calls the namespaced producer dead")
	require.NotZero(t, st.Producers[0].PIDNamespace)
	require.NotEqual(t, proc.PIDNamespace(), st.Producers[0].PIDNamespace)
	r = ringctl(t, "", "stat", "m", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, strconv.FormatUint(st.Producers[0].PIDNamespace, 10))

	// The claim is held idle: doctor says healthy and notes the live
	// producer's stalled reservation (one that did not move between two
	// looks), never a dead producer's, and --repair leaves it.
	r = ringctl(t, "", "doctor", "m", "--dir", dir)
	require.Zero(t, r.code, r.stdout)
	require.Contains(t, r.stdout, "healthy")
	require.NotContains(t, r.stdout, "problem")
	require.Contains(t, r.stdout, "note: the consumer waits at an uncommitted reservation of live producer slot 0")
	r = ringctl(t, "", "doctor", "m", "--repair", "--dir", dir)
	require.Zero(t, r.code, r.stdout+r.stderr)
	require.NotContains(t, r.stdout, "problem")

	_, err = io.WriteString(stdin, "commit\n")
	require.NoError(t, err)
	done := make([]byte, len("committed"))
	_, err = io.ReadFull(out, done)
	require.NoError(t, err)
	require.Equal(t, "committed", string(done))
	require.NoError(t, cmd.Wait(), "the namespaced producer failed")
	r = ringctl(t, "", "recv", "m", "-n", "2", "--timeout", "30s", "--dir", dir)
	require.Equal(t, "held-claim\nafter\n", r.stdout, r.stderr)
	r = ringctl(t, "", "stat", "m", "--json", "--dir", dir)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	require.Zero(t, st.Lost)
}
