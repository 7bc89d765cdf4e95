package ipc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// TestChaosStopThenCorrupt: producer processes are SIGSTOPped at random
// moments (a stopped producer is alive: the consumer waits for it, skips
// nothing, loses nothing), then a third process scribbles on the segment:
// the consumer and the producers report ErrCorrupt and exit cleanly; none
// crashes or hangs.
func TestChaosStopThenCorrupt(t *testing.T) {
	const producers = 2
	name := testutil.Name(t)
	r, err := ipc.Create(name, ipc.Config{Kind: ipc.MPSC, Producers: producers, Capacity: 1 << 13, MaxMessage: 256})
	require.NoError(t, err)
	defer r.Close()
	c, err := r.Consumer(&ipc.ConsumerConfig{StallLimit: 200 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	procs := make([]*exec.Cmd, producers)
	stderr := make([]*bytes.Buffer, producers)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=mpsc-producer", "SHMRING_T_PATH="+r.Path(), "SHMRING_T_ID="+strconv.Itoa(i), "SHMRING_T_COUNT=0")
		stderr[i] = &bytes.Buffer{}
		cmd.Stderr = stderr[i]
		require.NoError(t, cmd.Start())
		procs[i] = cmd
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	}

	chk := &seqChecker{next: map[int]uint64{}, gaps: map[int]int{}}
	read := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var bad error
		_, err := c.Read(ctx, 64, func(m []byte) {
			if bad == nil {
				bad = chk.check(m)
			}
		})
		if bad != nil {
			return bad
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil
		}
		return err
	}
	// Phase 1: stops.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for k := 0; k < 10; k++ {
		victim := procs[rng.IntN(producers)]
		require.NoError(t, victim.Process.Signal(syscall.SIGSTOP))
		until := time.Now().Add(time.Duration(100+rng.IntN(200)) * time.Millisecond)
		for time.Now().Before(until) {
			require.NoError(t, read(20*time.Millisecond))
		}
		require.NoError(t, victim.Process.Signal(syscall.SIGCONT))
		for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
			require.NoError(t, read(20*time.Millisecond))
		}
	}
	st, err := r.Stats()
	require.NoError(t, err)
	require.Zero(t, st.Lost, "a stopped producer is alive: nothing of it is skipped")
	for i := 0; i < producers; i++ {
		require.Zero(t, chk.gaps[i], "producer %d", i)
	}
	require.Positive(t, chk.count)

	// Phase 2: a third process scribbles on the positions.
	corrupt := exec.Command(os.Args[0], "-test.run=^$")
	corrupt.Env = append(os.Environ(), childEnv+"=corrupt", "SHMRING_T_PATH="+r.Path())
	out, err := corrupt.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var readErr error
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && readErr == nil; {
		readErr = read(20 * time.Millisecond)
	}
	require.ErrorIs(t, readErr, ipc.ErrCorrupt, "the consumer reports the damage")
	for i, p := range procs {
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "producer %d exits with an error, not success", i)
			require.Equal(t, 2, ee.ExitCode(), "producer %d: a clean error exit, not a crash: %s", i, stderr[i])
			require.Contains(t, stderr[i].String(), "corrupt")
		case <-time.After(10 * time.Second):
			t.Fatalf("producer %d hung after the corruption", i)
		}
	}
}

// corruptChild writes an impossible producer position into the segment, as
// a hostile or broken third process would.
func corruptChild() error {
	f, err := os.OpenFile(os.Getenv("SHMRING_T_PATH"), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], 1<<50+8)
	_, err = f.WriteAt(b[:], shm.HeaderSize+ring.ProducerLine)
	return err
}
