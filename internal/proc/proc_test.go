package proc

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStartTimeAndAlive(t *testing.T) {
	st, err := StartTime(os.Getpid())
	require.NoError(t, err)
	require.NotZero(t, st)
	require.True(t, Alive(os.Getpid(), st))
	require.False(t, Alive(os.Getpid(), st+1), "same PID, other start time: another process")
	require.False(t, Alive(0, 0))

	cmd := exec.Command("sleep", "10")
	require.NoError(t, cmd.Start())
	cst, err := StartTime(cmd.Process.Pid)
	require.NoError(t, err)
	require.True(t, Alive(cmd.Process.Pid, cst))
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.False(t, Alive(cmd.Process.Pid, cst))
}

func TestParseStartTime(t *testing.T) {
	line := "1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21"
	st, err := parseStartTime([]byte(line))
	require.NoError(t, err)
	require.Equal(t, uint64(987654), st)
	_, err = parseStartTime([]byte("1234 (x) S 1 2"))
	require.Error(t, err)
	_, err = parseStartTime([]byte("garbage"))
	require.Error(t, err)
}

func TestGoneOnlyInOurNamespace(t *testing.T) {
	ns := PIDNamespace()
	require.NotZero(t, ns, "/proc/self/ns/pid unreadable")
	st, err := SelfStartTime()
	require.NoError(t, err)
	self, err := StartTime(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, self, st)

	require.False(t, Gone(os.Getpid(), st, ns), "we live")
	require.True(t, Gone(os.Getpid(), st+1, ns), "same PID, other start time: the recorded process is gone")
	// Another namespace, or an unknown one: the PID means nothing here.
	require.False(t, Gone(os.Getpid(), st+1, ns+1))
	require.False(t, Gone(os.Getpid(), st+1, 0))

	cmd := exec.Command("sleep", "10")
	require.NoError(t, cmd.Start())
	cst, err := StartTime(cmd.Process.Pid)
	require.NoError(t, err)
	require.False(t, Gone(cmd.Process.Pid, cst, ns))
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.True(t, Gone(cmd.Process.Pid, cst, ns), "killed and reaped")
	require.False(t, Gone(cmd.Process.Pid, cst, ns+1), "in another namespace nothing is known")
}
