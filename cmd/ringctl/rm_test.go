package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// TestCreateOverForeignFile (issue 13, item 8): create over a file that is
// not a ring does not advise ringctl rm, which refuses it.
func TestCreateOverForeignFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notes")
	require.NoError(t, os.WriteFile(path, []byte("not a ring"), 0o600))
	r := ringctl(t, "", "create", "notes", "--size", "4KiB", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Equal(t, "ringctl create: "+path+" exists and is not a shmring ring, so ringctl rm leaves it alone; remove it yourself (rm "+path+") if nothing needs it, or choose another name\n", r.stderr)
	r = ringctl(t, "", "rm", "notes", "--dir", dir)
	require.Equal(t, 1, r.code, "rm refuses what is not a ring")
	require.FileExists(t, path)

	// Over a ring, the advice is ringctl rm, and it works.
	require.Zero(t, ringctl(t, "", "create", "ring", "--size", "4KiB", "--dir", dir).code)
	r = ringctl(t, "", "create", "ring", "--size", "4KiB", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "remove it first (ringctl rm)")
	require.Zero(t, ringctl(t, "", "rm", "ring", "--dir", dir).code)
}

// TestRmInUse (issue 13, item 8): rm of a ring that live processes hold
// names the roles and needs --force.
func TestRmInUse(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "m", "--size", "4KiB", "--kind", "mpsc", "--producers", "4", "--dir", dir).code)
	path := filepath.Join(dir, "m")

	// A producer process holds slot 0.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RINGCTL_TEST_CLAIM="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, len("claimed"))
	_, err = io.ReadFull(out, buf)
	require.NoError(t, err)

	r := ringctl(t, "", "rm", "m", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Equal(t, "ringctl rm: m is in use: producer slot 0 is held by live processes, which would carry on in the removed file where no command can see them; stop them first, or pass --force\n", r.stderr)
	require.FileExists(t, path)

	// And a consumer (this process).
	ring, err := ipc.Open(path)
	require.NoError(t, err)
	defer ring.Close()
	c, err := ring.Consumer(nil)
	require.NoError(t, err)
	r = ringctl(t, "", "rm", "m", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Equal(t, "ringctl rm: m is in use: the consumer and producer slot 0 are held by live processes, which would carry on in the removed file where no command can see them; stop them first, or pass --force\n", r.stderr)
	require.NoError(t, c.Close())

	// --force removes it anyway.
	r = ringctl(t, "", "rm", "m", "--force", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "removed m\n", r.stdout)
	require.NoFileExists(t, path)

	// An SPSC ring with nobody attached goes without --force.
	require.Zero(t, ringctl(t, "", "create", "s", "--size", "4KiB", "--dir", dir).code)
	require.Zero(t, ringctl(t, "", "rm", "s", "--dir", dir).code)
}
