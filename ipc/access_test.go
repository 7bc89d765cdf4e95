package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
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
	case errors.Is(err, fs.ErrPermission):
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

	private, err := ipc.Create(filepath.Join(dir, "private"), ipc.Config{Capacity: 1 << 12})
	require.NoError(t, err)
	defer private.Close()
	shared, err := ipc.Create(filepath.Join(dir, "shared"), ipc.Config{Capacity: 1 << 12, Mode: 0o640})
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
// mapped it. The inspection paths (Stats, and ops' Peek, ResetHighWater
// and Doctor) report ErrCorrupt instead of dying with SIGBUS.
func TestTruncatedUnderMapping(t *testing.T) {
	r := newRing(t, ipc.Config{Capacity: 1 << 16})
	p, err := r.Producer(nil)
	require.NoError(t, err)
	require.NoError(t, p.Write(context.Background(), []byte("x")))
	require.NoError(t, p.Close())
	require.NoError(t, os.Truncate(r.Path(), 4096)) // the header page only
	_, err = r.Stats()
	require.ErrorIs(t, err, ipc.ErrCorrupt)
	require.Contains(t, err.Error(), "truncated")
	_, err = ops.Peek(r, 10)
	require.ErrorIs(t, err, ipc.ErrCorrupt)
	require.ErrorIs(t, ops.ResetHighWater(r), ipc.ErrCorrupt)
	_, err = ops.Doctor(r, false)
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
	c, err := r.Consumer(&ipc.ConsumerConfig{Wait: ipc.Wait{PeerTimeout: time.Minute}}) // the producer may be slow to come on a loaded machine
	if err != nil {
		return err
	}
	defer c.Close()
	n, _ := strconv.Atoi(os.Getenv("SHMRING_T_COUNT"))
	got := 0
	for got < n {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		k, err := c.Read(ctx, 64, func([]byte) {})
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
	r, err := ipc.Create("orders", ipc.Config{Capacity: 1 << 14, Memfd: true})
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
	p, err := r.Producer(&ipc.ProducerConfig{Wait: ipc.Wait{PeerTimeout: time.Minute}}) // the consumer process may be slow to start
	require.NoError(t, err)
	defer p.Close()
	for i := 0; i < 10000; i++ {
		require.NoError(t, p.Write(context.Background(), []byte("m")))
	}
	require.NoError(t, cmd.Wait())
	require.Equal(t, "10000", out.String())

	// Sealed: the segment cannot shrink, so no mapping of it can fault.
	require.ErrorIs(t, syscall.Ftruncate(fdOf(t, r), 4096), syscall.EPERM)
}

func fdOf(t *testing.T, r *ipc.Ring) int { return r.FD() }

// sendRaw sends f over conn the way Ring.Share does, whatever f is: what a
// hostile or careless sender can do.
func sendRaw(t *testing.T, conn *net.UnixConn, f *os.File) {
	t.Helper()
	_, _, err := conn.WriteMsgUnix([]byte("shmring-segment"), syscall.UnixRights(int(f.Fd())), nil)
	require.NoError(t, err)
}

// TestReceiveRequiresSeals: Receive maps only a memfd sealed against
// shrinking, growing and further sealing. A plain segment file (in /dev/shm,
// or on disk where F_GET_SEALS fails and the check used to be skipped), an
// unsealed memfd or one sealed wrongly could be truncated by its sender
// under the receiver's mapping, killing the receiver with SIGBUS: each is
// refused with shm.ErrNotSealed, saying what was received and what is
// needed. A properly sealed copy of the same ring is received and read.
func TestReceiveRequiresSeals(t *testing.T) {
	src := newRing(t, ipc.Config{Capacity: 1 << 12})
	p, err := src.Producer(nil)
	require.NoError(t, err)
	require.NoError(t, p.Write(context.Background(), []byte("sealed")))
	require.NoError(t, p.Close())
	content, err := os.ReadFile(src.Path())
	require.NoError(t, err)
	memfd := func(seals int) *os.File {
		fd, err := unix.MemfdCreate("copy", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		require.NoError(t, err)
		f := os.NewFile(uintptr(fd), "copy")
		_, err = f.WriteAt(content, 0)
		require.NoError(t, err)
		if seals != 0 {
			_, err = unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals)
			require.NoError(t, err)
		}
		return f
	}
	onDisk := filepath.Join(t.TempDir(), "ring")
	require.NoError(t, os.WriteFile(onDisk, content, 0o600))

	receive := func(t *testing.T, f *os.File) (*ipc.Ring, error) {
		a, b := testutil.UnixPair(t)
		sendRaw(t, a, f)
		require.NoError(t, f.Close())
		return ipc.Receive(b)
	}
	for _, tc := range []struct {
		name string
		file func() *os.File
		want string
	}{
		{"segment file in /dev/shm", func() *os.File {
			f, err := os.OpenFile(src.Path(), os.O_RDWR, 0)
			require.NoError(t, err)
			return f
		}, "missing F_SEAL_SHRINK|F_SEAL_GROW"},
		{"segment file on disk", func() *os.File {
			f, err := os.OpenFile(onDisk, os.O_RDWR, 0)
			require.NoError(t, err)
			return f
		}, "cannot carry seals"},
		{"unsealed memfd", func() *os.File { return memfd(0) }, "seals none, missing"},
		{"memfd sealed against shrinking only", func() *os.File { return memfd(unix.F_SEAL_SHRINK) }, "missing F_SEAL_SEAL|F_SEAL_GROW"},
		{"memfd sealed against writing", func() *os.File {
			return memfd(shm.RequiredSeals | unix.F_SEAL_FUTURE_WRITE)
		}, "F_SEAL_FUTURE_WRITE forbids mapping it writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := receive(t, tc.file())
			if r != nil {
				_ = r.Close()
			}
			require.ErrorIs(t, err, shm.ErrNotSealed)
			require.ErrorIs(t, err, fs.ErrPermission)
			require.Contains(t, err.Error(), tc.want)
			require.Contains(t, err.Error(), "must be a memfd sealed with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL")
		})
	}
	t.Run("sealed memfd", func(t *testing.T) {
		r, err := receive(t, memfd(shm.RequiredSeals))
		require.NoError(t, err)
		defer r.Close()
		c, err := r.Consumer(nil)
		require.NoError(t, err)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var got string
		_, err = c.Read(ctx, 1, func(b []byte) { got = string(b) })
		require.NoError(t, err)
		require.Equal(t, "sealed", got)
	})
	t.Run("share refuses a named ring", func(t *testing.T) {
		a, _ := testutil.UnixPair(t)
		require.ErrorIs(t, src.Share(a), shm.ErrNotSealed)
	})
}
