package bridge_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// runServerChild runs role "nats-server": an embedded server with its store
// in envRing's directory, printing its URL, until killed.
func runServerChild() error {
	srv, err := natstest.New(os.Getenv(envRing), 0)
	if err != nil {
		return err
	}
	os.Stdout.WriteString(srv.URL() + "\n")
	select {}
}

// serverProcess starts a NATS server in a child process (so that a
// benchmark's allocations are the bridge's, not the server's) and returns
// its URL.
func serverProcess(b *testing.B) string {
	cmd := exec.CommandContext(testutil.ChildDeadline(b), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=nats-server", envRing+"="+b.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(b, err)
	return strings.TrimSpace(line)
}

// BenchmarkOut: producer → ring → out-bridge → a JetStream server in
// another process, 64-byte messages; allocations are this process's (the
// producer allocates nothing), per message.
func BenchmarkOut(b *testing.B) {
	url := serverProcess(b)
	js := connect(b, url)
	addStream(b, js, "B")
	r, err := ipc.Create(testutil.Name(b), ipc.Config{Sequences: true, Capacity: 1 << 20})
	require.NoError(b, err)
	b.Cleanup(func() { _ = r.Close() })
	o, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: url, Subject: "B.x"})
	require.NoError(b, err)
	runOut(b, o)
	p, err := r.Producer(nil)
	require.NoError(b, err)
	defer p.Close()
	msg := make([]byte, 64)
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		require.NoError(b, p.Write(context.Background(), msg))
	}
	waitFor(b, "every message released", func() bool { return o.Stats().Released == uint64(b.N) })
	b.StopTimer()
	require.Zero(b, o.Stats().Errors, o.Stats().LastError)
}
