package waitset_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/waitset"
	"github.com/stretchr/testify/require"
)

// peerChild runs the producer roles of TestPeerDeadAfterEveryPresence on
// the ring at SHMRING_T_PATHS: "fill" writes until the ring is full, prints
// "full N" (N messages written) and waits to be killed; "write-n" writes
// SHMRING_T_N messages and exits without closing its producer.
func peerChild(role string) error {
	r, err := ipc.Open(os.Getenv("SHMRING_T_PATHS"))
	if err != nil {
		return err
	}
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: time.Hour}})
	if err != nil {
		return err
	}
	switch role {
	case "fill":
		n := 0
		for ; ; n++ {
			err := p.TryWrite([]byte("q" + strconv.Itoa(n)))
			if errors.Is(err, ipc.ErrFull) {
				break
			}
			if err != nil {
				return err
			}
		}
		fmt.Printf("full %d\n", n)
		select {}
	case "write-n":
		n, err := strconv.Atoi(os.Getenv("SHMRING_T_N"))
		if err != nil {
			return err
		}
		for i := range n {
			if err := p.Write(context.Background(), []byte("q"+strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil // exits without Close, as a crash would: nothing stored after the writes
	}
	return fmt.Errorf("unknown role %q", role)
}

// startPeer starts a producer process of role on r.
func startPeer(t *testing.T, r *ipc.Ring, role string, n int) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=peer-"+role, "SHMRING_T_PATHS="+r.Path(), "SHMRING_T_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

// TestPeerDeadAfterEveryPresence (issue 16, the outside tester's report):
// a member's producer processes come and go, one after another, while
// another member is flooded; each absence after a presence is reported
// once, as a single Consumer's Read reports ErrPeerDead after its producer
// left:
//
//  1. a process writes 100 messages and exits: reported (PeerDead 1);
//  2. a process fills the ring and is SIGKILLed while the ring is still
//     full: the set read from the ring while it lived, but never found it
//     empty, so no sample saw the producer attached (before the fix the
//     presence was looked for only while the member was empty, and this
//     absence was never reported): reported (PeerDead 2);
//  3. a process writes one message and exits before the set reads at all
//     (it comes and goes between two samples): its write is its presence,
//     reported (PeerDead 3).
//
// For SPSC, SPSC with header commit, and MPSC rings.
//
// Nothing depends on timing: the set does not read while the producers of
// 1 and 3 live, and in 2 the ring holds more than the set reads from it
// before the kill.
func TestPeerDeadAfterEveryPresence(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ipc.Config
	}{
		{"spsc", ipc.Config{Kind: ipc.SPSC, Capacity: 4096}},
		// Header commit: the consumer finds records by their headers
		// and may be past the stored producer position.
		{"spsc-header-commit", ipc.Config{Kind: ipc.SPSC, Capacity: 4096, HeaderCommit: true}},
		{"mpsc", ipc.Config{Kind: ipc.MPSC, Capacity: 4096, Producers: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			q, b := newRing(t, cfg), newRing(t, ipc.Config{})
			s, ms := newSet(t, &waitset.Config{Budget: 4, Wait: ipc.Wait{PeerTimeout: 20 * time.Millisecond}}, q, b)

			// b is flooded for the whole test by a live producer.
			pb := producer(t, b)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					_ = pb.Write(ctx, []byte("b"))
				}
			}()
			t.Cleanup(func() { cancel(); wg.Wait() })

			var fromQ []string
			read := func() error {
				_, err := s.Read(ctxFor(t), 16, func(m *waitset.Member, msg []byte) {
					if m == ms[0] {
						fromQ = append(fromQ, string(msg))
					}
				})
				return err
			}
			// untilReport reads until q is reported, and checks that
			// nothing else is.
			untilReport := func(what string) {
				t.Helper()
				for end := time.Now().Add(stuck); ; {
					require.True(t, time.Now().Before(end), "%s: q's producer is gone and the set never reported it", what)
					err := read()
					if err == nil {
						continue
					}
					var me *waitset.MemberError
					require.ErrorAs(t, err, &me, what)
					require.Equal(t, ms[0], me.Member, "%s: %v", what, err)
					require.ErrorIs(t, err, ipc.ErrPeerDead, what)
					return
				}
			}
			seq := func(n int) []string {
				out := make([]string, n)
				for i := range out {
					out[i] = "q" + strconv.Itoa(i)
				}
				return out
			}

			// 1. A producer writes and exits.
			cmd, _ := startPeer(t, q, "write-n", 100)
			require.NoError(t, cmd.Wait())
			untilReport("a producer that wrote 100 and exited")
			require.Equal(t, seq(100), fromQ, "its messages first")
			require.Equal(t, uint64(1), ms[0].Stats().PeerDead)

			// 2. A producer fills q and is killed while q is busy.
			fromQ = nil
			cmd, out := startPeer(t, q, "fill", 0)
			l, err := out.ReadString('\n')
			require.NoError(t, err)
			var filled int
			_, err = fmt.Sscanf(l, "full %d\n", &filled)
			require.NoError(t, err, "%q", l)
			require.Greater(t, filled, 8)
			for len(fromQ) < filled/2 {
				require.NoError(t, read(), "q has a producer")
			}
			require.NoError(t, cmd.Process.Kill())
			_ = cmd.Wait()
			untilReport("a producer killed while its ring was busy")
			require.Equal(t, seq(filled), fromQ)
			require.Equal(t, uint64(2), ms[0].Stats().PeerDead)

			// 3. A producer writes one message and exits between two
			// samples: the set has not read since the last report.
			fromQ = nil
			cmd, _ = startPeer(t, q, "write-n", 1)
			require.NoError(t, cmd.Wait())
			untilReport("a producer that wrote one message and exited")
			require.Equal(t, seq(1), fromQ)

			require.Equal(t, uint64(3), ms[0].Stats().PeerDead)
			require.Zero(t, ms[1].Stats().PeerDead, "the flooded member has its producer")
			require.Equal(t, uint64(3), s.Stats().PeerDead)
			require.NotZero(t, ms[1].Stats().Messages)
		})
	}
}
