package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// accessChild opens the ring named by SHMRING_T_PATH as whatever user it
// runs as, with the options SHMRING_T_OPTS lists, and prints "ok" or the
// error.
func accessChild() error {
	var opts []ipc.Option
	for _, o := range strings.Fields(os.Getenv("SHMRING_T_OPTS")) {
		switch o {
		case "trust":
			opts = append(opts, ipc.WithTrustOwner())
		case "ro":
			opts = append(opts, ipc.WithReadOnly())
		}
	}
	r, err := ipc.Open(os.Getenv("SHMRING_T_PATH"), opts...)
	if err == nil {
		_, err = r.Stats()
		r.Close()
	}
	switch {
	case err == nil:
		fmt.Print("ok")
	case errors.Is(err, ipc.ErrPermission):
		fmt.Print("permission: ", err)
	default:
		fmt.Print("other: ", err)
	}
	return nil
}

// TestOtherUser runs a child process as user nobody against rings made by
// root: owner-only rings refuse it with a permission error; a group mode
// lets it read once it trusts the owner; without trust it refuses a ring
// it could open. Runs as root only.
func TestOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as another user")
	}
	const nobody = 65534
	// The child must be able to execute the test binary and reach the rings.
	dir, err := os.MkdirTemp("", "shmring-access-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "ipc.test")
	copyFile(t, os.Args[0], bin, 0o755)

	private, err := ipc.Create(filepath.Join(dir, "private"), ipc.WithCapacity(1<<12))
	require.NoError(t, err)
	defer private.Close()
	shared, err := ipc.Create(filepath.Join(dir, "shared"), ipc.WithCapacity(1<<12), ipc.WithMode(0o640))
	require.NoError(t, err)
	defer shared.Close()
	require.NoError(t, os.Chown(shared.Path(), 0, nobody))

	run := func(path, opts string) string {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=access", "SHMRING_T_PATH="+path, "SHMRING_T_OPTS="+opts)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.Output()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	out := run(private.Path(), "trust ro")
	require.True(t, strings.HasPrefix(out, "permission: "), out)
	require.Contains(t, out, "check the segment's owner and mode")

	out = run(shared.Path(), "ro")
	require.True(t, strings.HasPrefix(out, "permission: "), out)
	require.Contains(t, out, "owned by uid 0")

	require.Equal(t, "ok", run(shared.Path(), "trust ro"), "group read with trust")

	out = run(shared.Path(), "trust")
	require.True(t, strings.HasPrefix(out, "permission: "), "read-write needs write permission: %s", out)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// TestTruncatedUnderMapping: another process shrinks a segment after we
// mapped it. The inspection paths report ErrCorrupt instead of dying with
// SIGBUS.
func TestTruncatedUnderMapping(t *testing.T) {
	r := newRing(t, ipc.WithCapacity(1<<16))
	p, err := r.Producer()
	require.NoError(t, err)
	require.NoError(t, p.Write([]byte("x")))
	require.NoError(t, p.Close())
	require.NoError(t, os.Truncate(r.Path(), 4096)) // the header page only
	_, err = r.Stats()
	require.ErrorIs(t, err, ipc.ErrCorrupt)
	require.Contains(t, err.Error(), "truncated")
	_, err = r.Peek(10)
	require.ErrorIs(t, err, ipc.ErrCorrupt)
	require.ErrorIs(t, r.ResetHighWater(), ipc.ErrCorrupt)
	_, err = r.Doctor(false)
	require.ErrorIs(t, err, ipc.ErrCorrupt)
	_, err = ipc.Open(r.Path())
	require.ErrorIs(t, err, ipc.ErrCorrupt, "a new opener refuses the short file before mapping it")
}

// memfdChild receives a ring over the socket on descriptor 3 and consumes
// SHMRING_T_COUNT messages, printing how many it got.
func memfdChild() error {
	conn, err := net.FileConn(os.NewFile(3, "socket"))
	if err != nil {
		return err
	}
	r, err := ipc.Receive(conn.(*net.UnixConn))
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer()
	if err != nil {
		return err
	}
	defer c.Close()
	n, _ := strconv.Atoi(os.Getenv("SHMRING_T_COUNT"))
	got := 0
	for got < n {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		k, err := c.ReadBatch(ctx, 64, func([]byte) {})
		cancel()
		if err != nil {
			return err
		}
		got += k
	}
	fmt.Print(got)
	return nil
}

// TestMemfdShared: a ring in a sealed memfd, passed to a consumer process
// over a Unix socket; nobody can shrink it.
func TestMemfdShared(t *testing.T) {
	r, err := ipc.CreateMemfd("orders", ipc.WithCapacity(1<<14))
	require.NoError(t, err)
	defer r.Close()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	mine, theirs := os.NewFile(uintptr(fds[0]), "mine"), os.NewFile(uintptr(fds[1]), "theirs")
	defer mine.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=memfd", "SHMRING_T_COUNT=10000")
	cmd.ExtraFiles = []*os.File{theirs}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	require.NoError(t, cmd.Start())
	theirs.Close()
	conn, err := net.FileConn(mine)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, r.Share(conn.(*net.UnixConn)))
	p, err := r.Producer()
	require.NoError(t, err)
	defer p.Close()
	for i := 0; i < 10000; i++ {
		require.NoError(t, p.Write([]byte("m")))
	}
	require.NoError(t, cmd.Wait())
	require.Equal(t, "10000", out.String())

	// Sealed: the segment cannot shrink, so no mapping of it can fault.
	require.ErrorIs(t, syscall.Ftruncate(fdOf(t, r), 4096), syscall.EPERM)
}

func fdOf(t *testing.T, r *ipc.Ring) int { return r.FD() }
