package testutil

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// ChildDeadline bounds a child process of a test: a stuck child is killed
// after two minutes, so the test fails instead of hanging. No working run
// comes near it, however loaded the machine.
func ChildDeadline(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// hangingLine is what HangInCreate prints once it is inside Create.
const hangingLine = "initialising\n"

// HangInCreate is the child side of StartHangInCreate: it creates the
// segment name (a bare name or a path, as shm.Create takes it) and stops
// inside Create, after making the temporary file and before publishing it,
// until killed: a real create killed mid-way. Once there it prints a line
// to stdout. It returns only Create's error, if Create fails before it gets
// there.
func HangInCreate(name string) error {
	_, err := shm.Create(name, 8192, func([]byte) error {
		fmt.Print(hangingLine)
		select {}
	})
	return err
}

// StartHangInCreate starts this test binary (os.Args[0], running no tests)
// with env added to its environment, which must make it call HangInCreate,
// and returns once the child is inside Create. The child is killed when t
// ends, or after ChildDeadline.
func StartHangInCreate(t testing.TB, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ChildDeadline(t), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, hangingLine, line)
	return cmd
}

// SyncBuffer is a bytes.Buffer safe for a child process's output copier
// (exec's goroutine writing) and the test's reads at the same time.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
