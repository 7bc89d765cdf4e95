package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/stretchr/testify/require"
)

// bridgeDeadline bounds every wait on a condition: only a stuck test meets it.
const bridgeDeadline = 90 * time.Second

// startRingctl runs ringctl with args as a child process (the test binary,
// RINGCTL_TEST_ARGS) with env added, killed when t ends if still running.
func startRingctl(t *testing.T, env []string, args ...string) (cmd *exec.Cmd, stdout, stderr *testutil.SyncBuffer) {
	t.Helper()
	cmd = exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), "RINGCTL_TEST_ARGS="+strings.Join(args, "\x1f"))
	stdout, stderr = &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, stdout, stderr
}

// bridgeBlocks runs ringctl bridge status --json on the ring.
func bridgeBlocks(t *testing.T, name, dir string) []bridgeReport {
	t.Helper()
	r := ringctl(t, "", "bridge", "status", name, "--json", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	var reps []bridgeReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &reps), r.stdout)
	return reps
}

// publishN publishes n messages "m0".."m(n-1)" on subj, each acknowledged.
func publishN(t *testing.T, url, subj string, n int) {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), bridgeDeadline)
	defer cancel()
	for i := 0; i < n; i++ {
		_, err := js.Publish(ctx, subj, []byte(fmt.Sprintf("m%d", i)))
		require.NoError(t, err)
	}
}

func wantLines(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "m%d\n", i)
	}
	return b.String()
}

// TestBridgeInCommand: ringctl bridge in, a real process, against a
// server given by $NATS_URL: every message lands in the ring in order;
// bridge status and stat (other processes' view) show its block with the
// counters; it prints a status line a second; SIGTERM stops it cleanly
// (exit 0), leaving the block stopped.
func TestBridgeInCommand(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), bridgeDeadline)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORD", Subjects: []string{"ORD.>"}})
	require.NoError(t, err)
	publishN(t, srv.URL(), "ORD.new", 100)

	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	require.Empty(t, bridgeBlocks(t, "r", dir))
	cmd, stdout, stderr := startRingctl(t, []string{"NATS_URL=" + srv.URL()},
		"bridge", "in", "r", "--stream", "ORD", "--consumer", "ring", "--create-consumer", "--dir", dir)

	r := ringctl(t, "", "recv", "r", "-n", "100", "--timeout", "90s", "--dir", dir)
	require.Zero(t, r.code, r.stderr+stderr.String())
	require.Equal(t, wantLines(100), r.stdout)
	require.Eventually(t, func() bool {
		bs := bridgeBlocks(t, "r", dir)
		return len(bs) == 1 && bs[0].Acked == 100
	}, bridgeDeadline, 5*time.Millisecond, "the block shows every message acknowledged")
	b := bridgeBlocks(t, "r", dir)[0]
	require.Equal(t, "in", b.Direction)
	require.True(t, b.Up)
	require.Equal(t, "connected", b.Connection)
	require.EqualValues(t, 100, b.Moved)
	require.EqualValues(t, 100, b.Mark)
	require.EqualValues(t, cmd.Process.Pid, b.PID)

	st := ringctl(t, "", "stat", "r", "--json", "--dir", dir)
	require.Zero(t, st.code, st.stderr)
	var rep statReport
	require.NoError(t, json.Unmarshal([]byte(st.stdout), &rep))
	require.Len(t, rep.Bridges, 1)
	require.Equal(t, "in", rep.Bridges[0].Direction)
	st = ringctl(t, "", "stat", "r", "--dir", dir)
	require.Contains(t, st.stdout, "bridge in (stream → ring): up")
	require.Regexp(t, `\n  written +100 \(0 duplicates skipped\)\n`, st.stdout)

	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "written=100") },
		bridgeDeadline, 5*time.Millisecond, "a status line a second")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a clean stop exits 0: %s", stderr.String())
	require.Contains(t, stderr.String(), `bridging stream "ORD" (consumer "ring") on `+srv.URL())
	require.Contains(t, stderr.String(), "as producer 1 (slot 0 in ringctl stat); SIGINT or SIGTERM stops")
	b = bridgeBlocks(t, "r", dir)[0]
	require.Equal(t, "stopped", b.State)
	require.Equal(t, "closed", b.Connection)
	require.False(t, b.Stale, "a cleanly stopped bridge is not stale")
	require.False(t, b.Up)
	s := ringctl(t, "", "bridge", "status", "r", "--dir", dir)
	require.Zero(t, s.code)
	require.Contains(t, s.stdout, "bridge in (stream → ring): stopped\n")
}

// TestBridgeOutCommand: ringctl bridge out, a real process: every line
// sent into the ring lands in the stream once and in order; bridge status
// shows the out block with the window and the releases; SIGTERM stops it
// cleanly (exit 0) with the block stopped.
func TestBridgeOutCommand(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), bridgeDeadline)
	defer cancel()
	str, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OUT", Subjects: []string{"OUT.>"}})
	require.NoError(t, err)

	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	cmd, stdout, stderr := startRingctl(t, nil, "bridge", "out", "r", "--nats", srv.URL(), "--subject", "OUT.x",
		"--stream", "OUT", "--window", "8", "--strict-order", "--id", "ord-r", "--dir", dir)
	r := ringctl(t, wantLines(100), "send", "r", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Eventually(t, func() bool {
		bs := bridgeBlocks(t, "r", dir)
		return len(bs) == 1 && bs[0].Mark == 100
	}, bridgeDeadline, 5*time.Millisecond, "the block shows every message released: %s", stderr.String())
	require.Contains(t, stderr.String(), "(connections: 1; Msg-Id prefix ord-r:)", "an SPSC ring's bridge (and a strict one) publishes on one connection, with the --id given")
	b := bridgeBlocks(t, "r", dir)[0]
	require.Equal(t, "out", b.Direction)
	require.True(t, b.Up)
	require.EqualValues(t, 8, b.Window)
	require.GreaterOrEqual(t, b.Acked, uint64(100))
	require.EqualValues(t, cmd.Process.Pid, b.PID)

	c, err := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	var got strings.Builder
	for i := 0; i < 100; i++ {
		m, err := c.Next(jetstream.FetchMaxWait(bridgeDeadline))
		require.NoError(t, err)
		got.Write(m.Data())
		got.WriteByte('\n')
		require.Equal(t, "ord-r:0:"+strconv.Itoa(i+1), m.Headers().Get("Nats-Msg-Id"), "--id, slot 0, the sequence")
	}
	require.Equal(t, wantLines(100), got.String())
	info, err := str.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 100, info.State.Msgs, "nothing duplicated")

	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "released=100") },
		bridgeDeadline, 5*time.Millisecond, "a status line a second")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a clean stop exits 0: %s", stderr.String())
	b = bridgeBlocks(t, "r", dir)[0]
	require.Equal(t, "stopped", b.State)
	require.Equal(t, "closed", b.Connection)
	require.False(t, b.Stale, "a cleanly stopped bridge is not stale")
	s := ringctl(t, "", "bridge", "status", "r", "--dir", dir)
	require.Contains(t, s.stdout, "bridge out (ring → stream): stopped\n")
	require.Regexp(t, `\n  released +100\n`, s.stdout)
}

// TestBridgeInEmbedded: --embedded starts a JetStream server in the
// bridge's process with its store in DIR (the stream created), says where
// on stderr; --quiet prints no status line; SIGINT stops it (exit 0).
func TestBridgeInEmbedded(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	cmd, stdout, stderr := startRingctl(t, nil, "bridge", "in", "r", "--embedded", dir+"/js", "--stream", "EMB",
		"--consumer", "ring", "--create-consumer", "--quiet", "--dir", dir)
	url := embeddedURL(t, stderr)
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "bridging stream") }, bridgeDeadline, 5*time.Millisecond)
	publishN(t, url, "EMB.x", 20)
	r := ringctl(t, "", "recv", "r", "-n", "20", "--timeout", "90s", "--dir", dir)
	require.Zero(t, r.code, r.stderr+stderr.String())
	require.Equal(t, wantLines(20), r.stdout)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), stderr.String())
	require.Empty(t, stdout.String(), "--quiet")
	st, err := os.Stat(dir + "/js/jetstream")
	require.NoError(t, err, "the store is in DIR")
	require.True(t, st.IsDir())
}

// TestBridgeUsage: the verbs and their flags are checked before anything
// is opened or dialled: exit 2 with the reason and the usage; a server
// that is not there fails fast (exit 1) naming the flag to fix.
func TestBridgeUsage(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing verb: out (ring → stream), in (stream → ring) or status"},
		{[]string{"sideways", "r"}, `unknown verb "sideways"`},
		{[]string{"out", "--subject", "x"}, "missing ring NAME"},
		{[]string{"out", "r", "--dir", dir}, "bridge out needs --subject SUBJ"},
		{[]string{"out", "r", "--subject", "x", "--window", "-3", "--dir", dir}, "--window -3: want a positive number"},
		{[]string{"out", "r", "--subject", "x", "--conns", "-1", "--dir", dir}, "--conns -1: want a positive number"},
		{[]string{"out", "r", "--subject", "x", "--conns", "2", "--strict-order", "--dir", dir}, "--conns 2 with --strict-order"},
		{[]string{"in", "r", "--stream", "S", "--dir", dir}, "bridge in needs --stream STREAM and --consumer DURABLE"},
		{[]string{"in", "r", "--stream", "S", "--consumer", "c", "--producer-id", "-1", "--dir", dir}, "--producer-id -1"},
		{[]string{"in", "r", "--stream", "S", "--consumer", "c", "--embedded", dir + "/js", "--nats", "nats://10.0.0.1:4222", "--dir", dir}, "with --embedded: want the local address"},
		{[]string{"status"}, "missing ring NAME"},
	} {
		r := ringctl(t, "", append([]string{"bridge"}, tc.args...)...)
		require.Equal(t, 2, r.code, "%v: %s", tc.args, r.stderr)
		require.Contains(t, r.stderr, tc.want, tc.args)
		require.Contains(t, r.stderr, "usage: ringctl bridge out NAME", tc.args)
	}
	r := ringctl(t, "", "bridge", "in", "r", "--bogus", "--dir", dir)
	require.Equal(t, 2, r.code)
	require.Equal(t, "ringctl bridge: unknown flag --bogus (see `ringctl bridge --help`)\nusage: ringctl "+bridgeUsage+"\n", r.stderr)

	for _, verb := range [][]string{{"in", "--stream", "S", "--consumer", "c"}, {"out", "--subject", "S.x"}} {
		r = ringctl(t, "", append(append([]string{"bridge"}, verb...), "r", "--nats", "nats://127.0.0.1:1", "--dir", dir)...)
		require.Equal(t, 1, r.code, verb)
		require.Contains(t, r.stderr, "is a NATS server running there? check --nats", verb)
	}
	// A bad --tlsca file is said to be one, not taken for a missing server.
	for _, verb := range [][]string{{"in", "--stream", "S", "--consumer", "c"}, {"out", "--subject", "S.x"}} {
		r = ringctl(t, "", append(append([]string{"bridge"}, verb...), "r", "--tlsca", dir+"/nonexistent.pem", "--nats", "nats://127.0.0.1:1", "--dir", dir)...)
		require.Equal(t, 1, r.code, verb)
		require.Contains(t, r.stderr, "read the TLS CA file "+dir+"/nonexistent.pem", verb)
		require.Contains(t, r.stderr, "give --tlsca a readable PEM file", verb)
		require.NotContains(t, r.stderr, "is a NATS server running there?", verb)
	}

	r = ringctl(t, "", "bridge", "--help")
	require.Zero(t, r.code)
	require.Contains(t, r.stdout, "usage: ringctl bridge out NAME --nats URL --subject SUBJ")
	r = ringctl(t, "", "bridge", "in", "--help")
	require.Zero(t, r.code)
	for _, f := range []string{"-nats", "-creds", "-user", "-password", "-tlsca", "-embedded", "-create-consumer", "-producer-id", "-quiet"} {
		require.Contains(t, r.stdout, "\n  "+f, f)
	}
}

// embeddedURL waits for the address a bridge --embedded prints first on
// stderr, and returns it.
func embeddedURL(t *testing.T, stderr *testutil.SyncBuffer) string {
	t.Helper()
	var url string
	require.Eventually(t, func() bool {
		line, _, ok := strings.Cut(stderr.String(), "\n")
		if !ok {
			return false
		}
		_, err := fmt.Sscanf(line, "embedded JetStream server at %s", &url)
		return err == nil
	}, bridgeDeadline, 5*time.Millisecond, "the embedded server's address on stderr")
	return url
}

// TestBridgeKilledGoesStale: a bridge SIGKILLed leaves its last sample in
// the segment; once its heartbeat is older than 5 s, bridge status calls
// it stale (not up), whatever state it was in, without looking at its PID.
func TestBridgeKilledGoesStale(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), bridgeDeadline)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "K", Subjects: []string{"K.>"}})
	require.NoError(t, err)
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	cmd, _, stderr := startRingctl(t, nil, "bridge", "in", "r", "--nats", srv.URL(), "--stream", "K", "--consumer", "c",
		"--create-consumer", "--quiet", "--dir", dir)
	require.Eventually(t, func() bool {
		bs := bridgeBlocks(t, "r", dir)
		return len(bs) == 1 && bs[0].Up && bs[0].State == "fetching"
	}, bridgeDeadline, 5*time.Millisecond, "the bridge running: %s", stderr.String())
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.Eventually(t, func() bool { return bridgeBlocks(t, "r", dir)[0].Stale }, bridgeDeadline, 50*time.Millisecond,
		"the dead bridge's block going stale")
	b := bridgeBlocks(t, "r", dir)[0]
	require.False(t, b.Up)
	require.NotEqual(t, "stopped", b.State, "its last sample stays: it never stopped")
	s := ringctl(t, "", "bridge", "status", "r", "--dir", dir)
	require.Contains(t, s.stdout, "bridge in (stream → ring): stale: no heartbeat for 5 s or more (dead or hung)\n")
}

// TestBridgeOutEmbedded: bridge out --embedded creates the stream (default
// name SHMRING, capturing --subject) in its own server, where another
// process reads what the ring held.
func TestBridgeOutEmbedded(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--dir", dir).code)
	require.Zero(t, ringctl(t, wantLines(30), "send", "r", "--dir", dir).code)
	cmd, _, stderr := startRingctl(t, nil, "bridge", "out", "r", "--embedded", dir+"/js", "--subject", "A.b", "--quiet", "--dir", dir)
	url := embeddedURL(t, stderr)
	require.Eventually(t, func() bool {
		bs := bridgeBlocks(t, "r", dir)
		return len(bs) == 1 && bs[0].Mark == 30
	}, bridgeDeadline, 5*time.Millisecond, "every message released: %s", stderr.String())
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), bridgeDeadline)
	defer cancel()
	str, err := js.Stream(ctx, "SHMRING")
	require.NoError(t, err)
	require.Equal(t, []string{"A.b"}, str.CachedInfo().Config.Subjects)
	c, err := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	var got strings.Builder
	for i := 0; i < 30; i++ {
		m, err := c.Next(jetstream.FetchMaxWait(bridgeDeadline))
		require.NoError(t, err)
		got.Write(m.Data())
		got.WriteByte('\n')
	}
	require.Equal(t, wantLines(30), got.String())
	nc.Close()
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), stderr.String())
}
