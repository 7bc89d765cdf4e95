package bridge_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// The out-bridge's children: their configuration, besides envURL and
// envRing (helpers_test.go).
const (
	envSubject = "SHMRING_BRIDGE_T_SUBJECT"
	envWindow  = "SHMRING_BRIDGE_T_WINDOW"
	envCount   = "SHMRING_BRIDGE_T_COUNT"
	envID      = "SHMRING_BRIDGE_T_ID"
	envStrict  = "SHMRING_BRIDGE_T_STRICT"
	envConns   = "SHMRING_BRIDGE_T_CONNS"

	// outKillsEnv sets the number of SIGKILLs of TestOutKilled (default 50).
	outKillsEnv = "SHMRING_BRIDGE_OUT_KILLS"
)

// runOutChild runs role "out" (an out-bridge, until killed) or "producer"
// (producer envID writes its messages 1 to envCount, then exits).
func runOutChild(role string) error {
	if role == "nats-server" {
		return runServerChild() // out_bench_test.go
	}
	r, err := ipc.Open(os.Getenv(envRing))
	if err != nil {
		return err
	}
	switch role {
	case "out":
		window, _ := strconv.Atoi(os.Getenv(envWindow))
		conns, _ := strconv.Atoi(os.Getenv(envConns))
		b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{
			URL:           os.Getenv(envURL),
			Subject:       os.Getenv(envSubject),
			Window:        window,
			Conns:         conns,
			ReconnectWait: 20 * time.Millisecond,
			StrictOrder:   os.Getenv(envStrict) != "",
		})
		if err != nil {
			return err
		}
		return b.Run(context.Background())
	case "producer":
		id, _ := strconv.Atoi(os.Getenv(envID))
		n, _ := strconv.ParseUint(os.Getenv(envCount), 10, 64)
		p, err := r.Producer(&ipc.ProducerConfig{ID: id, Wait: ipc.Wait{PeerTimeout: forever}})
		if err != nil {
			return err
		}
		for i := uint64(1); i <= n; i++ {
			if err := p.Write(context.Background(), prodMsg(id, i, 16+int(i%100))); err != nil {
				return fmt.Errorf("producer %d, message %d: %w", id, i, err)
			}
		}
		return p.Close()
	}
	return fmt.Errorf("unknown child role %q", role)
}

// child starts the test binary as a child in role with env.
func child(t *testing.T, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	return cmd
}

// An out-bridge process SIGKILLed at random moments while 4 producer
// processes write loses nothing and duplicates nothing at the far end: each
// successor re-publishes from the released position, and the stream's
// duplicate window discards what its predecessor had landed. The whole
// stream is read back: each producer's messages 1 to N exactly once, in
// order. Each bridge publishes on a random number of connections, 1 to 4
// (or the default: 4, one per slot), so successors differ from their
// predecessors in it; each producer's order holds across them.
func TestOutKilled(t *testing.T) {
	kills := 50
	if s := os.Getenv(outKillsEnv); s != "" {
		var err error
		kills, err = strconv.Atoi(s)
		require.NoError(t, err, outKillsEnv)
	}
	outKilled(t, kills, false)
}

// TestOutKilled with OutConfig.StrictOrder, 10 kills: every successor's
// first publish carries no expectation, and the chain of the others holds
// across the kills; each producer's messages once and in order.
func TestOutKilledStrict(t *testing.T) { outKilled(t, 10, true) }

func outKilled(t *testing.T, kills int, strict bool) {
	const producers = 4
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	addStream(t, js, "K")
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: producers, Sequences: true, Capacity: 1 << 14})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })

	// Each bridge moves up to ~20 KiB (some 200 messages) before its kill.
	n := uint64(kills*50 + 200)
	prods := make([]*exec.Cmd, producers)
	for k := range prods {
		prods[k] = child(t, "producer", envRing+"="+name, envID+"="+strconv.Itoa(k+1), envCount+"="+strconv.FormatUint(n, 10))
	}
	t.Cleanup(func() {
		for _, p := range prods {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	})
	start := func() *exec.Cmd {
		env := []string{envURL + "=" + srv.URL(), envRing + "=" + name, envSubject + "=K.out", envWindow + "=" + strconv.Itoa(1+rand.IntN(128))}
		if strict {
			env = append(env, envStrict+"=1")
		} else {
			env = append(env, envConns+"="+strconv.Itoa(rand.IntN(5))) // 0: the default
		}
		return child(t, "out", env...)
	}
	consumed := func() uint64 {
		rs, err := r.Stats()
		require.NoError(t, err)
		return rs.ConsumerPos
	}
	for k := 0; k < kills; k++ {
		cmd := start()
		// A random moment: at once (one kill in five: connecting, taking
		// the ring), or once this bridge has released a random number of
		// bytes more, up to 20 KiB (or everything is released).
		if rand.IntN(5) != 0 {
			target := consumed() + 1 + rand.Uint64N(20<<10)
			waitFor(t, fmt.Sprintf("kill %d: released position %d", k, target), func() bool {
				rs, err := r.Stats()
				return err != nil || rs.ConsumerPos >= target || rs.MsgsIn == producers*n && rs.Depth == 0
			})
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
	}
	cmd := start()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for k, p := range prods {
		require.NoError(t, p.Wait(), "producer %d", k+1)
	}
	waitFor(t, "every message released", func() bool {
		rs, err := r.Stats()
		return err == nil && rs.MsgsIn == producers*n && rs.Depth == 0
	})
	msgs := readStream(t, js, "K", producers*n)
	checkProducers(t, msgs, producers, n)
	rs, err := r.Stats()
	require.NoError(t, err)
	t.Logf("strict order %v: %d kills, %d messages; the ring delivered %d again after kills (MsgsOut - MsgsIn)", strict, kills, producers*n, rs.MsgsOut-rs.MsgsIn)
	require.Zero(t, rs.Drops)
	require.Zero(t, rs.Lost)
}
