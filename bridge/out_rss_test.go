package bridge_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/bridge"
	"github.com/shmring/shmring/internal/natstest"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// The RSS child: an out-bridge process (role bpRSSRole) on the ring envRing,
// publishing on bpEnvSubject to envURL with the window bpEnvWindow, which
// prints its state every few milliseconds until it is killed.
const (
	bpRSSRole    = "out-rss"
	bpEnvSubject = "SHMRING_BRIDGE_T_BP_SUBJECT"
	bpEnvWindow  = "SHMRING_BRIDGE_T_BP_WINDOW"
)

// bpRSSChild runs the RSS child: the bridge, and a line of its state every
// 20 ms: published acked released in-flight errors retries connection.
func bpRSSChild() error {
	r, err := ipc.Open(os.Getenv(envRing))
	if err != nil {
		return err
	}
	window, err := strconv.Atoi(os.Getenv(bpEnvWindow))
	if err != nil {
		return fmt.Errorf("%s: %w", bpEnvWindow, err)
	}
	b, err := bridge.NewOut(context.Background(), r, bridge.OutConfig{
		URL: os.Getenv(envURL), Subject: os.Getenv(bpEnvSubject), Window: window, ReconnectWait: 20 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	for {
		select {
		case err := <-done:
			return fmt.Errorf("Run returned: %w", err)
		default:
		}
		st := b.Stats()
		fmt.Printf("%d %d %d %d %d %d %s\n", st.Published, st.Acked, st.Released, st.InFlight, st.Errors, st.Retries, st.Connection)
		time.Sleep(20 * time.Millisecond) // a reporting period
	}
}

// bpChildState is a line of the RSS child's.
type bpChildState struct {
	Published, Acked, Released uint64
	InFlight                   int
	Errors, Retries            uint64
	Connection                 string
	Lines                      int // lines read so far
}

// bpMem is one reading of /proc/PID/status, in bytes.
type bpMem struct{ RSS, Anon, Shmem, HWM uint64 }

func bpReadMem(pid int) (bpMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return bpMem{}, err
	}
	var m bpMem
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return bpMem{}, fmt.Errorf("/proc/%d/status: %q", pid, line)
		}
		switch f[0] {
		case "VmRSS:":
			m.RSS = v << 10
		case "RssAnon:":
			m.Anon = v << 10
		case "RssShmem:":
			m.Shmem = v << 10
		case "VmHWM:":
			m.HWM = v << 10
		}
	}
	if m.RSS == 0 || m.Anon == 0 {
		return bpMem{}, fmt.Errorf("/proc/%d/status has no VmRSS or RssAnon", pid)
	}
	return m, nil
}

// The out-bridge's memory is bounded by its window whatever the stream
// does: a bridge process stalled for a long stretch, first by a stream that
// refuses (MaxMsgs, DiscardNew: until the bridge has retried 8 times and
// printed 150 state lines, 3 s at least), then by the server shut down (150
// lines more), while a producer keeps pushing 64 KiB messages (dropping what
// does not fit), keeps its private memory (RssAnon: the Go heap, the NATS
// client's buffers) under 2 × Window × the largest message + 48 MiB, and its
// peak resident set (VmHWM, which also counts the ring's shared pages it
// touched) under that plus the ring's capacity. The figures are logged.
// Then the server returns, the limit is lifted, and every message the
// producer wrote is in the stream, once.
func TestOutRSSFlat(t *testing.T) {
	const (
		size     = 64 << 10
		window   = 128
		capacity = 16 << 20
		maxMsgs  = 64
		samples  = 50  // per phase, at least
		stretch  = 150 // the child's state lines per phase, at least (20 ms apart)
	)
	bound := uint64(2*window*size + 48<<20)
	srv := natstest.Start(t)
	js := connect(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	sc := jetstream.StreamConfig{Name: "RSS", Subjects: []string{"RSS.>"}, Storage: jetstream.FileStorage, MaxMsgs: maxMsgs, Discard: jetstream.DiscardNew}
	_, err := js.CreateStream(ctx, sc)
	require.NoError(t, err)
	r, name := newRing(t, ipc.Config{Capacity: capacity, MaxMessage: size})

	cmd := exec.CommandContext(testutil.ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+bpRSSRole, envURL+"="+srv.URL(), envRing+"="+name,
		bpEnvSubject+"=RSS.x", bpEnvWindow+"="+strconv.Itoa(window))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var (
		mu    sync.Mutex
		state bpChildState
	)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var s bpChildState
			if _, err := fmt.Sscan(sc.Text(), &s.Published, &s.Acked, &s.Released, &s.InFlight, &s.Errors, &s.Retries, &s.Connection); err != nil {
				continue
			}
			mu.Lock()
			s.Lines = state.Lines + 1
			state = s
			mu.Unlock()
		}
	}()
	child := func() bpChildState {
		mu.Lock()
		defer mu.Unlock()
		return state
	}

	// The producer pushes until told to stop, in bursts, dropping what does
	// not fit; it counts what it wrote.
	p, err := r.Producer(&ipc.ProducerConfig{Full: ipc.Drop})
	require.NoError(t, err)
	defer p.Close()
	var written, dropped atomic.Uint64
	pctx, stopProducer := context.WithCancel(context.Background())
	pdone := make(chan error, 1)
	go func() {
		msg := make([]byte, size)
		for pctx.Err() == nil {
			for k := 0; k < 64; k++ {
				err := p.Write(pctx, msg)
				switch {
				case err == nil:
					written.Add(1)
				case errors.Is(err, ipc.ErrFull):
					dropped.Add(1)
				default:
					pdone <- err
					return
				}
			}
			time.Sleep(time.Millisecond) // leave the CPUs to the bridge and the server
		}
		pdone <- nil
	}()
	defer stopProducer()

	var all []bpMem
	sample := func(phase string, enough func(from, now bpChildState) bool) {
		from := child()
		n := 0
		waitFor(t, phase, func() bool {
			m, err := bpReadMem(cmd.Process.Pid)
			if err != nil {
				return false
			}
			all = append(all, m)
			n++
			return n >= samples && dropped.Load() > 0 && enough(from, child())
		})
		m := all[len(all)-1]
		t.Logf("%s: %d samples; child %+v; RSS %.1f MiB (anon %.1f, shmem %.1f), peak %.1f MiB",
			phase, n, child(), mib(m.RSS), mib(m.Anon), mib(m.Shmem), mib(m.HWM))
	}
	// Stalled by the stream: the bridge keeps retrying its window.
	waitFor(t, "the stream to fill", func() bool {
		s, err := js.Stream(ctx, "RSS")
		return err == nil && s.CachedInfo().State.Msgs == maxMsgs
	})
	sample("stream full (DiscardNew)", func(from, now bpChildState) bool {
		return now.Retries >= from.Retries+8 && now.Lines >= from.Lines+stretch
	})
	// Stalled by the server's absence.
	srv.Shutdown()
	sample("server down", func(from, now bpChildState) bool {
		return now.Connection != "CONNECTED" && now.Lines >= from.Lines+stretch
	})
	stopProducer()
	require.NoError(t, <-pdone)

	var maxAnon, maxRSS uint64
	for _, m := range all {
		maxAnon, maxRSS = max(maxAnon, m.Anon), max(maxRSS, m.RSS)
	}
	final, err := bpReadMem(cmd.Process.Pid)
	require.NoError(t, err)
	t.Logf("bridge process over %d samples: RSS max %.1f MiB, private (RssAnon) max %.1f MiB, first %.1f, last %.1f; peak RSS (VmHWM) %.1f MiB; bound %.1f MiB private, %.1f MiB peak; producer wrote %d, dropped %d",
		len(all), mib(maxRSS), mib(maxAnon), mib(all[0].Anon), mib(all[len(all)-1].Anon), mib(final.HWM), mib(bound), mib(bound+capacity), written.Load(), dropped.Load())
	require.LessOrEqual(t, maxAnon, bound, "the bridge's private memory")
	require.LessOrEqual(t, final.HWM, bound+capacity, "the bridge's peak resident set")

	// The stall ends: everything the producer wrote reaches the stream.
	require.NoError(t, srv.Restart())
	sc.MaxMsgs = -1
	waitFor(t, "the limit lifted", func() bool {
		_, err := js.UpdateStream(ctx, sc)
		return err == nil
	})
	want := written.Load()
	waitFor(t, fmt.Sprintf("%d messages in the stream", want), func() bool {
		s, err := js.Stream(ctx, "RSS")
		return err == nil && s.CachedInfo().State.Msgs >= want
	})
	s, err := js.Stream(ctx, "RSS")
	require.NoError(t, err)
	require.Equal(t, want, s.CachedInfo().State.Msgs, "nothing duplicated")
	waitFor(t, "the ring drained", func() bool {
		rs, err := r.Stats()
		return err == nil && rs.Depth == 0 && child().Released == want
	})
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
