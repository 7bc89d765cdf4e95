package bridge_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// killsEnv raises the number of SIGKILLs of TestInKilled (default 50).
const killsEnv = "SHMRING_BRIDGE_KILLS"

// An in-bridge process SIGKILLed at random moments while a publisher
// publishes loses nothing and duplicates nothing in the ring: each
// successor resumes where the ring and the consumer say, writing again only
// what its predecessor may have died writing (which the ring's consumer
// discards) and recovering from the stream what was delivered to the dead
// one but never written.
func TestInKilled(t *testing.T) {
	kills := 50 // the issue: SIGKILLed 50 times, as the out-bridge
	if s := os.Getenv(killsEnv); s != "" {
		var err error
		kills, err = strconv.Atoi(s)
		require.NoError(t, err, killsEnv)
	}
	for _, tc := range []struct {
		name string
		ack  jetstream.AckPolicy
		kind ipc.Kind
	}{
		{"ack-all/spsc", jetstream.AckAllPolicy, ipc.SPSC},
		{"ack-explicit/mpsc", jetstream.AckExplicitPolicy, ipc.MPSC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t)
			js := connect(t, srv.URL())
			addStream(t, js, "K")
			addConsumer(t, js, "K", "in", tc.ack)
			cfg := ipc.Config{Kind: tc.kind, Capacity: 1 << 16}
			if tc.kind == ipc.MPSC {
				cfg.Producers = 2
			}
			r, name := newRing(t, cfg)
			rd := startReader(t, r)

			// The publisher runs ahead of the bridges by up to 100 messages
			// a kill, at most total.
			total := uint64(kills+1) * 100
			pubErr := make(chan error, 1)
			go func() { pubErr <- publish(t, js, "K.x", 0, total, 32) }()

			start := func() *exec.Cmd {
				cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"=in", envURL+"="+srv.URL(), envStream+"=K", envConsumer+"=in",
					envRing+"="+name, envBatch+"="+strconv.Itoa(1+rand.IntN(64)), envProducers+"=1")
				cmd.Stderr = os.Stderr
				require.NoError(t, cmd.Start())
				return cmd
			}
			for k := 0; k < kills; k++ {
				cmd := start()
				// A random moment: once this bridge has written a random
				// number more (up to 100) — or at once if all are in.
				got, err := rd.count()
				require.NoError(t, err)
				target := min(got+1+rand.Uint64N(100), total)
				waitFor(t, fmt.Sprintf("kill %d: %d messages in the ring", k, target), func() bool {
					n, err := rd.count()
					return err != nil || n >= target
				})
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				_ = cmd.Wait()
			}
			cmd := start()
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			require.NoError(t, <-pubErr)
			rd.waitAll(t, total)

			rs, err := r.Stats()
			require.NoError(t, err)
			t.Logf("%d kills, %d messages; the ring discarded %d duplicates", kills, total, rs.Duplicates)
			require.Zero(t, rs.Drops)
		})
	}
}
