package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// Defects an outside tester found in ringctl (issues 15 and 16).

// TestBridgeEmbeddedPortTaken: --embedded with a --nats port that is taken
// (or no port at all) fails at once, saying what to do, instead of waiting
// a minute for a server that cannot listen.
func TestBridgeEmbeddedPortTaken(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	for _, port := range []int{taken, 99999} {
		r := ringctl(t, "", "bridge", "out", "r", "--subject", "S.x", "--embedded", filepath.Join(dir, "js"),
			"--nats", fmt.Sprintf("nats://127.0.0.1:%d", port), "--quiet", "--dir", dir)
		require.Equal(t, 1, r.code, r.stderr)
		require.Equal(t, fmt.Sprintf("ringctl bridge: --embedded: port %d is in use (or invalid): choose another --nats port, or leave --nats out for a random one\n", port), r.stderr)
	}
}

// TestBridgeErrorsNameTheFlag: each connection problem names the flag to
// fix (not --nats when it is another), with one "bridge:" prefix; a ring
// without sequences says the ringctl command that makes one; --password
// without --user is refused.
func TestBridgeErrorsNameTheFlag(t *testing.T) {
	srv := natstest.Start(t)
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	require.Zero(t, ringctl(t, "", "create", "plain", "--size", "64KiB", "--dir", dir).code)
	host := strings.TrimPrefix(srv.URL(), "nats://")
	for _, verb := range [][]string{{"in", "--stream", "S", "--consumer", "c"}, {"out", "--subject", "S.x"}} {
		for _, tc := range []struct {
			flags      []string
			want, dont string
		}{
			{[]string{"--creds", dir + "/nonexistent.creds", "--nats", srv.URL()},
				"read the credentials file " + dir + "/nonexistent.creds: open " + dir + "/nonexistent.creds: no such file or directory: give --creds a readable NATS credentials file", "--nats"},
			{[]string{"--nats", "tls://" + host},
				"the tls:// URL asks for TLS, but the server does not offer it: enable TLS on the server, or connect with nats:// (fix --nats)", "--tlsca"},
		} {
			args := append(append(append([]string{"bridge"}, verb...), "r", "--dir", dir), tc.flags...)
			r := ringctl(t, "", args...)
			require.Equal(t, 1, r.code, args)
			require.Contains(t, r.stderr, tc.want, args)
			require.NotContains(t, r.stderr, tc.dont, args)
			require.True(t, strings.HasPrefix(r.stderr, "ringctl bridge: connect to NATS") || strings.HasPrefix(r.stderr, "ringctl bridge: read the"), r.stderr)
			require.NotContains(t, r.stderr, "bridge: bridge:", args)
		}
		args := append(append([]string{"bridge"}, verb...), "r", "--password", "secret", "--nats", srv.URL(), "--dir", dir)
		r := ringctl(t, "", args...)
		require.Equal(t, 2, r.code, args)
		require.Contains(t, r.stderr, "ringctl bridge: --password without --user: give the user name too (or use --creds FILE)\nusage: ringctl bridge", args)
	}
	r := ringctl(t, "", "bridge", "in", "plain", "--stream", "S", "--consumer", "c", "--nats", srv.URL(), "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "recreate the ring with ringctl create --sequences")
	require.True(t, strings.HasPrefix(r.stderr, "ringctl bridge: ring "), r.stderr)
}

// TestBridgeInSlotNumbering: bridge in's --producer-id counts from 1; its
// messages say which slot (counted from 0, as stat and send --id count)
// that is.
func TestBridgeInSlotNumbering(t *testing.T) {
	srv := natstest.Start(t)
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "m", "--size", "64KiB", "--kind", "mpsc", "--producers", "4", "--sequences", "--dir", dir).code)
	r := ringctl(t, "", "bridge", "in", "m", "--stream", "S", "--consumer", "c", "--producer-id", "5", "--nats", srv.URL(), "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Equal(t, "ringctl bridge: --producer-id 5: "+filepath.Join(dir, "m")+" has producers 1 to 4 (slots 0 to 3 in ringctl stat)\n", r.stderr)
	r = ringctl(t, "", "bridge", "in", "m", "--stream", "S", "--consumer", "c", "--nats", srv.URL(), "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "set --producer-id (1 to 4; --producer-id N is slot N-1 in ringctl stat)")

	r = ringctl(t, "x\n", "send", "m", "--id", "4", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Equal(t, "ringctl send: --id 4: "+filepath.Join(dir, "m")+" has producer slots 0 to 3 (--id counts from 0, as ringctl stat does; bridge in's --producer-id counts from 1)\n", r.stderr)

	r = ringctl(t, "", "help", "send")
	require.Contains(t, r.stdout, "numbered from 0 as ringctl stat shows slots (bridge in's --producer-id N is slot N-1")
	r = ringctl(t, "", "bridge", "in", "--help")
	require.Contains(t, r.stdout, "ID N is slot N-1 in ringctl stat and send --id")
}

// TestBridgeInCreateConsumerSubject: --create-consumer with a --subject
// the stream never captures is refused, naming the stream's subjects.
func TestBridgeInCreateConsumerSubject(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), bridgeDeadline)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORD", Subjects: []string{"ORD.>", "OTHER.*"}})
	require.NoError(t, err)
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "r", "--size", "64KiB", "--sequences", "--dir", dir).code)
	for _, subj := range []string{"ELSE.x", "ORD", "OTHER.a.b"} {
		r := ringctl(t, "", "bridge", "in", "r", "--stream", "ORD", "--consumer", "c", "--create-consumer", "--subject", subj, "--nats", srv.URL(), "--dir", dir)
		require.Equal(t, 1, r.code, subj)
		require.Contains(t, r.stderr, `stream "ORD" captures ORD.>,OTHER.*, never "`+subj+`": a consumer filtering it would get nothing; fix --subject`, subj)
		_, err := js.Consumer(ctx, "ORD", "c")
		require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "no consumer was created for %s", subj)
	}
}

// TestSendPeerTimeout: --peer-timeout 0 waits for a consumer as long as it
// takes (the default, 1 s, would give up); a short one gives up, saying
// how to wait longer; help send says what each timeout bounds.
func TestSendPeerTimeout(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "R", "--size", "4KiB", "--dir", dir).code)
	r := ringctl(t, sendLines(260), "send", "R", "--policy", "block", "--timeout", "120s", "--peer-timeout", "10ms", "--dir", dir)
	require.Equal(t, 3, r.code, r.stderr)
	require.Equal(t, "ringctl send: sent 256 of 260: the ring is full and no consumer is attached (none since creation); start one with `ringctl recv R`, wait longer for one with --peer-timeout (0: forever), or use --policy drop\n", r.stderr)
	require.Zero(t, ringctl(t, "", "recv", "R", "-n", "256", "--dir", dir).code)

	done := make(chan result, 1)
	go func() {
		done <- ringctl(t, sendLines(300), "send", "R", "--policy", "block", "--timeout", "120s", "--peer-timeout", "0", "--dir", dir)
	}()
	ring, err := ipc.Open(filepath.Join(dir, "R"))
	require.NoError(t, err)
	defer ring.Close()
	waitUntil(t, "send fills the ring", func() bool {
		st, err := ring.Stats()
		return err == nil && st.FullEvents > 0
	})
	// Let the default peer timeout (1 s) pass with no consumer: a lower
	// bound only (a loaded machine makes it longer, never the test wrong).
	time.Sleep(2 * time.Second)
	select {
	case r := <-done:
		t.Fatalf("send gave up with --peer-timeout 0: %d %s", r.code, r.stderr)
	default:
	}
	r = ringctl(t, "", "recv", "R", "-n", "300", "--timeout", "90s", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, sendLines(300), r.stdout)
	r = <-done
	require.Zero(t, r.code, r.stderr)

	r = ringctl(t, "x\n", "send", "R", "--peer-timeout", "-1s", "--dir", dir)
	require.Equal(t, 2, r.code, r.stderr)
	r = ringctl(t, "", "help", "send")
	require.Contains(t, r.stdout, "a missing one is --peer-timeout's")
	require.Contains(t, r.stdout, "no consumer has been attached for DUR (default 1s; 0: wait for one forever)")
}

// TestSendRouteMistakes: a ring named twice in --route is refused;
// --key-field past a line's fields keys it by the whole line, counted on
// stderr.
func TestSendRouteMistakes(t *testing.T) {
	dir := t.TempDir()
	names, consumers := routeRings(t, dir, 2)
	r := ringctl(t, "a\n", "send", "--route", names[0]+","+names[0], "--dir", dir)
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "names ring "+names[0]+" twice: name each ring once")
	r = ringctl(t, "a\n", "send", "--route", names[0]+","+filepath.Join(dir, names[0]), "--dir", dir)
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "twice (as "+names[0]+" and "+filepath.Join(dir, names[0])+")")

	r = ringctl(t, "k1 a\nshort\nk1 b\nalso\n", "send", "--route", strings.Join(names, ","), "--by", "key", "--key-field", "2", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "ringctl send: 2 line(s) had fewer than 2 fields: each was keyed by the whole line\n", r.stderr)
	got := len(drain(t, consumers[0])) + len(drain(t, consumers[1]))
	require.Equal(t, 4, got)
}

// TestSmallCLIFixes: demo --window without --bridge is a usage error; a
// flag error of bridge prints the usage after the reason; a stopped
// bridge is "stopped", not stale.
func TestSmallCLIFixes(t *testing.T) {
	r := ringctl(t, "", "demo", "--window", "8")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "--window and --producers go with --bridge")
	r = ringctl(t, "", "bridge", "out", "r", "--bogus")
	require.Equal(t, 2, r.code)
	require.Equal(t, "ringctl bridge: unknown flag --bogus (see `ringctl bridge --help`)\nusage: ringctl "+bridgeUsage+"\n", r.stderr)
	require.Equal(t, "stopped", bridgeHealth(bridgeReport{State: "stopped"}))
	require.Equal(t, "up", bridgeHealth(bridgeReport{Up: true, State: "reading"}))
	require.Contains(t, bridgeHealth(bridgeReport{Stale: true, State: "reading"}), "stale")
}
