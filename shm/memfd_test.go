package shm_test

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// filePair returns the two ends of a connected SOCK_SEQPACKET socket pair
// as *os.File: a syscall.Conn that is not a net.Conn.
func filePair(t *testing.T) (a, b *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	a, b = os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { _, _ = a.Close(), b.Close() })
	return a, b
}

// memfdsNamed counts this process's descriptors for the memfd named name.
func memfdsNamed(t *testing.T, name string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "/memfd:"+name+" (deleted)" {
			n++
		}
	}
	return n
}

// TestMemfdOverAnySyscallConn: SendFD and ReceiveFD take any syscall.Conn
// on a Unix socket, here plain *os.File ends of a socket pair (shm does not
// link package net). The received descriptor is close-on-exec.
func TestMemfdOverAnySyscallConn(t *testing.T) {
	seg, err := shm.CreateMemfd("files", 8192, func(b []byte) error { copy(b, "over files"); return nil })
	require.NoError(t, err)
	defer seg.Close()
	a, b := filePair(t)
	require.NoError(t, seg.SendFD(a))
	other, err := shm.ReceiveFD(b)
	require.NoError(t, err)
	defer other.Close()
	require.Equal(t, "over files", string(other.Body()[:10]))
	other.Body()[0] = 'O'
	require.Equal(t, byte('O'), seg.Body()[0], "the same memory")
	flags, err := unix.FcntlInt(other.FD(), unix.F_GETFD, 0)
	require.NoError(t, err)
	require.NotZero(t, flags&unix.FD_CLOEXEC, "received close-on-exec")
	require.Equal(t, 2, memfdsNamed(t, "shmring:files"), "the sender's and the receiver's")
}

// TestReceiveFDRefusals: a message that is not SendFD's, or carries no
// descriptor or more than one, is refused saying what arrived, and every
// descriptor it brought is closed (none leaks into the receiver). A peer
// gone without sending is io.EOF; a nil or closed connection is an error,
// not a panic.
func TestReceiveFDRefusals(t *testing.T) {
	memfd := func(t *testing.T, name string) int {
		fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		require.NoError(t, err)
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, shm.RequiredSeals)
		require.NoError(t, err)
		return fd
	}
	for _, tc := range []struct {
		name string
		msg  string
		fds  int // memfds attached
		want string
	}{
		{"wrong message", "hello", 1, `unexpected message "hello"`},
		{"message too long", strings.Repeat("shmring-segment", 3), 1, `unexpected message "shmring-segmentshmring-segmentsh"`},
		{"no descriptor", "shmring-segment", 0, "no descriptor in the message"},
		// Two fit the control buffer (its alignment leaves room), three do
		// not: the kernel installs what fits and sets MSG_CTRUNC.
		{"two descriptors", "shmring-segment", 2, "want one descriptor, got 2"},
		{"three descriptors", "shmring-segment", 3, "want one descriptor, got more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			label := "shmring-test-refusal-" + strings.ReplaceAll(tc.name, " ", "-")
			var fds []int
			for range tc.fds {
				fds = append(fds, memfd(t, label))
			}
			a, b := filePair(t)
			var rights []byte
			if len(fds) > 0 {
				rights = unix.UnixRights(fds...)
			}
			require.NoError(t, unix.Sendmsg(int(a.Fd()), []byte(tc.msg), rights, nil, 0))
			for _, fd := range fds {
				require.NoError(t, unix.Close(fd))
			}
			require.Zero(t, memfdsNamed(t, label), "in flight only")

			seg, err := shm.ReceiveFD(b)
			require.Nil(t, seg)
			require.ErrorContains(t, err, "shm: receive a segment: "+tc.want)
			require.Zero(t, memfdsNamed(t, label), "every received descriptor closed")
		})
	}
	t.Run("peer closed", func(t *testing.T) {
		a, b := filePair(t)
		require.NoError(t, a.Close())
		_, err := shm.ReceiveFD(b)
		require.ErrorIs(t, err, io.EOF)
		require.ErrorContains(t, err, "closed the connection without sending a segment")
	})
	t.Run("nil and closed connections", func(t *testing.T) {
		_, err := shm.ReceiveFD(nil)
		require.ErrorContains(t, err, "no connection")
		seg, err := shm.CreateMemfd("closed", 8192, func([]byte) error { return nil })
		require.NoError(t, err)
		defer seg.Close()
		require.ErrorContains(t, seg.SendFD(nil), "no connection")

		_, f := filePair(t)
		require.NoError(t, f.Close())
		_, err = shm.ReceiveFD(f)
		require.ErrorContains(t, err, "use of closed file")
		require.ErrorContains(t, seg.SendFD(f), "use of closed file")

		_, c := testutil.UnixPair(t)
		require.NoError(t, c.Close())
		_, err = shm.ReceiveFD(c)
		require.ErrorIs(t, err, net.ErrClosed)
		require.ErrorIs(t, seg.SendFD(c), net.ErrClosed)
	})
	t.Run("peer gone before a send", func(t *testing.T) {
		seg, err := shm.CreateMemfd("gone", 8192, func([]byte) error { return nil })
		require.NoError(t, err)
		defer seg.Close()
		a, b := filePair(t)
		require.NoError(t, b.Close())
		err = seg.SendFD(a)
		require.ErrorIs(t, err, unix.EPIPE, "an error, not SIGPIPE")
		require.ErrorContains(t, err, "sendmsg")
	})
}
