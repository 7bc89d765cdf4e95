package bridge_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/stretchr/testify/require"
)

// Producers → ring → out-bridge → stream: every message lands once, in
// order per producer, with its Nats-Msg-Id (slot and sequence in a ring
// with sequences, the ring position without), and the bridge releases all.
func TestOutEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       ipc.Config
		producers int
	}{
		{"mpsc/sequences", ipc.Config{Kind: ipc.MPSC, Producers: 4, Sequences: true, Capacity: 1 << 14}, 4},
		{"spsc/no-sequences", ipc.Config{Capacity: 1 << 14}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 2000
			srv := natstest.Start(t)
			js := connect(t, srv.URL())
			addStream(t, js, "O")
			name := testutil.Name(t)
			r, err := ipc.Create(name, tc.cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Close() })

			b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{URL: srv.URL(), Subject: "O.x", Window: 64})
			require.NoError(t, err)
			require.Equal(t, "O", b.Stats().Stream)
			runOut(t, b)

			var wg sync.WaitGroup
			errs := make(chan error, tc.producers)
			for k := 1; k <= tc.producers; k++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: forever}})
					if err != nil {
						errs <- err
						return
					}
					defer p.Close()
					for i := uint64(1); i <= n; i++ {
						if err := p.Write(context.Background(), prodMsg(k, i, 16+int(i%100))); err != nil {
							errs <- fmt.Errorf("producer %d message %d: %w", k, i, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			total := uint64(tc.producers * n)
			waitFor(t, "every message released", func() bool { return b.Stats().Released == total })
			msgs := readStream(t, js, "O", total)
			checkProducers(t, msgs, tc.producers, n)

			id := name + ":" + strconv.FormatInt(ops.Header(r).CreatedNanos, 16) + ":"
			ids := map[string]bool{}
			for _, m := range msgs {
				require.True(t, strings.HasPrefix(m.id, id), "Msg-Id %q", m.id)
				rest := strings.TrimPrefix(m.id, id)
				if tc.cfg.Sequences {
					require.Regexp(t, `^[0-9]+:[1-9][0-9]*$`, rest, "Msg-Id %q", m.id)
				} else {
					require.Regexp(t, `^p[1-9][0-9]*$`, rest, "Msg-Id %q", m.id)
				}
				require.False(t, ids[m.id], "Msg-Id %q twice", m.id)
				ids[m.id] = true
			}
			st := b.Stats()
			require.Equal(t, total, st.Acked)
			require.Equal(t, total, st.Published)
			require.Zero(t, st.Errors, st.LastError)
			require.Zero(t, st.Duplicates)
			require.Zero(t, st.InFlight)
			rs, err := r.Stats()
			require.NoError(t, err)
			require.Zero(t, rs.Depth)
			t.Log(st)
		})
	}
}
