package ops_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// ctx bounds a test's waits: long enough that only a stuck test meets it.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// create makes a ring named for t with cfg, closed when t ends.
func create(t *testing.T, cfg ipc.Config) *ipc.Ring {
	t.Helper()
	r, err := ipc.Create(testutil.Name(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// open opens the ring at path (read-only with ipc.WithReadOnly), closed
// when t ends.
func open(t *testing.T, path string, opts ...ipc.Option) *ipc.Ring {
	t.Helper()
	r, err := ipc.Open(path, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// produce writes msgs through a new producer of r (cfg as Producer takes
// it) and closes it.
func produce(t *testing.T, r *ipc.Ring, cfg *ipc.ProducerConfig, msgs ...string) {
	t.Helper()
	p, err := r.Producer(cfg)
	require.NoError(t, err)
	for _, m := range msgs {
		require.NoError(t, p.Write(ctx(t), []byte(m)))
	}
	require.NoError(t, p.Close())
}

// consume reads every message waiting in r through a new consumer, and
// closes it.
func consume(t *testing.T, r *ipc.Ring) []string {
	t.Helper()
	c, err := r.Consumer(nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()
	var got []string
	for {
		n, err := c.TryRead(64, func(m []byte) { got = append(got, string(m)) })
		require.NoError(t, err)
		if n == 0 {
			return got
		}
	}
}

// killedClaimer runs a child process that claims a record in slot 0 of
// the MPSC ring at path and kills it there: a producer dead with its
// reservation in flight.
func killedClaimer(t *testing.T, path string) {
	t.Helper()
	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=claim", "OPS_T_PATH="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	require.NoError(t, err)
	require.Equal(t, "claimed\n", line)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
}
