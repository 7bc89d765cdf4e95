package shm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/shmring/shmring/internal/printable"
	"golang.org/x/sys/unix"
)

// ErrNotSealed is returned by FromFile and ReceiveFD for a descriptor that
// is not a memfd carrying the seals that make it safe to map (see
// RequiredSeals): a plain file, on tmpfs or any other file system, or a memfd
// sealed wrongly, could be truncated by the sender under the mapping and
// crash this process with SIGBUS. Matches ErrPermission.
var ErrNotSealed error = &sentinel{"descriptor is not a sealed memfd", ErrPermission}

// RequiredSeals are the seals every memfd segment carries, and that FromFile
// requires of a received descriptor: it can never shrink (no SIGBUS under a
// mapping), never grow, and its seals cannot change (so nobody can later add
// a write seal that would stop new receivers from mapping it writable).
const RequiredSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

// forbiddenSeals make a memfd unusable as a ring: its memory could not be
// mapped writable.
const forbiddenSeals = unix.F_SEAL_WRITE | unix.F_SEAL_FUTURE_WRITE

// CreateMemfd makes an anonymous segment (memfd_create) with a body of
// bodySize bytes, calls init to fill the body, and seals it against
// shrinking and growing. It has no name: processes share it by passing its
// descriptor over a Unix socket (SendFD, ReceiveFD). Because nobody can
// truncate it, a reader never meets SIGBUS; use it where processes that can
// write the ring are not trusted not to.
func CreateMemfd(name string, bodySize uint64, init func(body []byte) error) (seg *Segment, err error) {
	if err := printable.Check(name); err != nil {
		return nil, fmt.Errorf("shm: memfd name %q %s: it shows in /proc/PID/fd, so it must be printable; choose another: %w", name, err, ErrBadName)
	}
	wrap := func(err error) error { return fmt.Errorf("shm: create memfd %q: %w", name, err) }
	if bodySize == 0 || bodySize > maxBody {
		return nil, wrap(fmt.Errorf("body size %d is out of range (1 to %d bytes)", bodySize, uint64(maxBody)))
	}
	fd, err := unix.MemfdCreate("shmring:"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, wrap(err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	mem, h, err := build(fd, bodySize, init)
	if err != nil {
		return nil, wrap(err)
	}
	defer func() {
		if err != nil {
			_ = unix.Munmap(mem)
		}
	}()
	if _, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, RequiredSeals); err != nil {
		return nil, wrap(fmt.Errorf("seal: %w", err))
	}
	return &Segment{path: f.Name(), f: f, mem: mem, header: h, memfd: true}, nil
}

// FromFile maps a segment received as an open file: a memfd from
// ReceiveFD, made by CreateMemfd or by another program that seals it the
// same way. It refuses, with ErrNotSealed and before mapping anything, any
// descriptor that is not a memfd carrying RequiredSeals (F_SEAL_SHRINK,
// F_SEAL_GROW and F_SEAL_SEAL), or that is sealed against writing: a plain
// file (in /dev/shm or on disk) or an unsealed memfd could be truncated by
// the sender under the mapping, and every access past the new end would kill
// this process with SIGBUS. To map a segment by name, use Open. Then it
// validates the segment as Open does. The Segment owns f from then on; on
// error f is closed.
func FromFile(f *os.File) (seg *Segment, err error) {
	wrap := func(err error) error { return fmt.Errorf("shm: map %q: %w", f.Name(), err) }
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	fd := int(f.Fd())
	if err := checkSeals(fd); err != nil {
		return nil, wrap(err)
	}
	var st unix.Stat_t
	if err = unix.Fstat(fd, &st); err != nil {
		return nil, wrap(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, wrap(fmt.Errorf("mode %#o: %w", st.Mode, ErrNotRegular))
	}
	var page [HeaderSize]byte
	n, err := unix.Pread(fd, page[:], 0)
	if err != nil {
		return nil, wrap(fmt.Errorf("read header: %w", err))
	}
	h, err := DecodeHeader(page[:n], st.Size)
	if err != nil {
		return nil, wrap(err)
	}
	mem, err := unix.Mmap(fd, 0, int(h.TotalSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, wrap(fmt.Errorf("mmap %d bytes: %w", h.TotalSize, err))
	}
	return &Segment{path: f.Name(), f: f, mem: mem, header: h, memfd: true}, nil
}

// segmentMessage is the payload of the message that carries a segment's
// descriptor; ReceiveFD refuses any other.
const segmentMessage = "shmring-segment"

// SendFD sends the segment's descriptor over a connected Unix socket
// (SCM_RIGHTS), in one message. conn is any [syscall.Conn] whose descriptor
// is such a socket: a *net.UnixConn, or an *os.File holding one end of a
// socketpair; its deadlines, if it has any, apply. The receiver maps the
// same memory with ReceiveFD. Only a sealed memfd segment (CreateMemfd) can
// be sent: a receiver refuses anything else, so SendFD refuses it first,
// with ErrNotSealed.
func (s *Segment) SendFD(conn syscall.Conn) error {
	wrap := func(err error) error { return fmt.Errorf("shm: send %q: %w", s.path, err) }
	if err := checkSeals(int(s.f.Fd())); err != nil {
		return wrap(err)
	}
	rc, err := rawConn(conn)
	if err != nil {
		return wrap(err)
	}
	rights := unix.UnixRights(int(s.f.Fd()))
	var n int
	var sendErr error
	err = rc.Write(func(fd uintptr) bool {
		// MSG_NOSIGNAL: a closed peer is an EPIPE error, never a SIGPIPE
		// (which would kill a program that embeds Go as a C library).
		for {
			n, sendErr = unix.SendmsgN(int(fd), []byte(segmentMessage), rights, nil, unix.MSG_NOSIGNAL)
			if sendErr != unix.EINTR {
				return sendErr != unix.EAGAIN // EAGAIN: wait until writable, then again
			}
		}
	})
	runtime.KeepAlive(s.f)
	switch {
	case err != nil: // closed, or past the connection's deadline
		return wrap(err)
	case sendErr != nil:
		return wrap(os.NewSyscallError("sendmsg", sendErr))
	case n != len(segmentMessage):
		return wrap(fmt.Errorf("sent %d of the message's %d bytes: %w", n, len(segmentMessage), io.ErrShortWrite))
	}
	return nil
}

// ReceiveFD receives a segment's descriptor sent with SendFD over a
// connected Unix socket (conn as for SendFD) and maps it (see FromFile:
// anything but a properly sealed memfd is refused with ErrNotSealed). It
// reads one message; if that is not SendFD's, or carries no descriptor or
// more than one, it fails and closes every descriptor the message brought.
// A peer that closed the connection without sending gives an error
// matching io.EOF.
func ReceiveFD(conn syscall.Conn) (*Segment, error) {
	wrap := func(err error) error { return fmt.Errorf("shm: receive a segment: %w", err) }
	rc, err := rawConn(conn)
	if err != nil {
		return nil, wrap(err)
	}
	buf := make([]byte, 32)
	// Room for one descriptor (two on 64-bit, where the control message
	// is padded to 8 bytes): the kernel closes any that do not fit and
	// says so with MSG_CTRUNC.
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn, flags int
	var recvErr error
	err = rc.Read(func(fd uintptr) bool {
		// MSG_CMSG_CLOEXEC: the descriptor is close-on-exec from the start.
		for {
			n, oobn, flags, _, recvErr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
			if recvErr != unix.EINTR {
				return recvErr != unix.EAGAIN // EAGAIN: wait until readable, then again
			}
		}
	})
	switch {
	case err != nil: // closed, or past the connection's deadline
		return nil, wrap(err)
	case recvErr != nil:
		return nil, wrap(os.NewSyscallError("recvmsg", recvErr))
	}
	fds, parseErr := receivedFDs(oob[:oobn])
	fail := func(err error) (*Segment, error) {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return nil, wrap(err)
	}
	switch {
	case n == 0 && oobn == 0:
		return fail(fmt.Errorf("the sender closed the connection without sending a segment: %w", io.EOF))
	case flags&unix.MSG_TRUNC != 0 || string(buf[:n]) != segmentMessage:
		return fail(fmt.Errorf("unexpected message %q: the sender is not shm's SendFD (ipc's Share)", buf[:n]))
	case flags&unix.MSG_CTRUNC != 0:
		return fail(fmt.Errorf("want one descriptor, got more (the kernel truncated the control message)"))
	case parseErr != nil:
		return fail(fmt.Errorf("no descriptor in the message: its control data does not parse: %w", parseErr))
	case len(fds) == 0:
		return fail(errors.New("no descriptor in the message"))
	case len(fds) != 1:
		return fail(fmt.Errorf("want one descriptor, got %d", len(fds)))
	}
	return FromFile(os.NewFile(uintptr(fds[0]), "memfd:received"))
}

// rawConn returns conn's raw connection, or an error if there is none.
func rawConn(conn syscall.Conn) (syscall.RawConn, error) {
	if conn == nil {
		return nil, errors.New("no connection (nil syscall.Conn): pass a connected Unix socket")
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("the connection has no descriptor (closed?): %w", err)
	}
	return rc, nil
}

// receivedFDs returns every descriptor in the SCM_RIGHTS messages of a
// control buffer, and an error if the buffer does not parse; the caller
// owns (and must close) every descriptor returned, error or not.
func receivedFDs(oob []byte) (fds []int, err error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, perr := unix.ParseUnixRights(&msgs[i])
		fds = append(fds, got...)
		err = errors.Join(err, perr)
	}
	return fds, err
}

// checkSeals returns nil if fd is a memfd with every seal of RequiredSeals
// and no write seal, else an ErrNotSealed error that says what fd is and
// what is needed.
func checkSeals(fd int) error {
	need := "a ring passed by descriptor must be a memfd sealed with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL (ipc.Create with Config.Memfd makes one; to share a named segment, open it by name instead)"
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		// EINVAL: the file system has no seals (ext4, a pipe, a socket...).
		return fmt.Errorf("received %s, which cannot carry seals (F_GET_SEALS: %v), so its sender could truncate it under the mapping: %s: %w", describeFD(fd), err, need, ErrNotSealed)
	}
	if missing := RequiredSeals &^ seals; missing != 0 {
		return fmt.Errorf("received %s with seals %s, missing %s, so it could be truncated or resized under the mapping: %s: %w", describeFD(fd), sealNames(seals), sealNames(missing), need, ErrNotSealed)
	}
	if bad := seals & forbiddenSeals; bad != 0 {
		return fmt.Errorf("received %s with seals %s: %s forbids mapping it writable, which a ring needs: %s, and no write seal: %w", describeFD(fd), sealNames(seals), sealNames(bad), need, ErrNotSealed)
	}
	return nil
}

// describeFD names what a descriptor refers to, for an error message: its
// kind and what /proc/self/fd shows for it ("/tmp/x", "/memfd:n (deleted)").
func describeFD(fd int) string {
	kind := "a descriptor"
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			kind = "a regular file"
		case unix.S_IFDIR:
			kind = "a directory"
		case unix.S_IFIFO:
			kind = "a pipe"
		case unix.S_IFSOCK:
			kind = "a socket"
		case unix.S_IFCHR, unix.S_IFBLK:
			kind = "a device"
		}
	}
	if target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil {
		return fmt.Sprintf("%s (%q)", kind, target)
	}
	return kind
}

// sealNames spells a seal set as F_SEAL_ names joined by "|" ("none" if empty).
func sealNames(seals int) string {
	var names []string
	for _, s := range []struct {
		bit  int
		name string
	}{
		{unix.F_SEAL_SEAL, "F_SEAL_SEAL"}, {unix.F_SEAL_SHRINK, "F_SEAL_SHRINK"}, {unix.F_SEAL_GROW, "F_SEAL_GROW"},
		{unix.F_SEAL_WRITE, "F_SEAL_WRITE"}, {unix.F_SEAL_FUTURE_WRITE, "F_SEAL_FUTURE_WRITE"},
	} {
		if seals&s.bit != 0 {
			names = append(names, s.name)
			seals &^= s.bit
		}
	}
	if seals != 0 {
		names = append(names, fmt.Sprintf("%#x", seals))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}
