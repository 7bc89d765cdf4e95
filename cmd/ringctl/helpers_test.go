package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// writeDeadReservation leaves, in the MPSC ring at path, a reservation of
// slot 0 that its producer process never committed: a child process claims
// and is SIGKILLed.
func writeDeadReservation(t *testing.T, path string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RINGCTL_TEST_CLAIM="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 7)
	_, err = out.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "claimed", string(buf))
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
}

// claimChild claims a record in slot 0 and waits to be killed.
func claimChild(path string) {
	r, err := ipc.Open(path)
	if err != nil {
		panic(err)
	}
	p, err := r.Producer(ipc.WithProducerID(0))
	if err != nil {
		panic(err)
	}
	if _, err := p.Claim(10); err != nil {
		panic(err)
	}
	os.Stdout.WriteString("claimed")
	select {}
}
