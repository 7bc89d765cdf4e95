package shm

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

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
	return &Segment{path: f.Name(), f: f, mem: mem, header: h}, nil
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
	return &Segment{path: f.Name(), f: f, mem: mem, header: h}, nil
}

// SendFD sends the segment's descriptor over a Unix socket (SCM_RIGHTS).
// The receiver maps the same memory with ReceiveFD. Only a sealed memfd
// segment (CreateMemfd) can be sent: a receiver refuses anything else, so
// SendFD refuses it first, with ErrNotSealed.
func (s *Segment) SendFD(conn *net.UnixConn) error {
	if err := checkSeals(int(s.f.Fd())); err != nil {
		return fmt.Errorf("shm: send %q: %w", s.path, err)
	}
	rights := unix.UnixRights(int(s.f.Fd()))
	_, _, err := conn.WriteMsgUnix([]byte("shmring-segment"), rights, nil)
	if err != nil {
		return fmt.Errorf("shm: send %q: %w", s.path, err)
	}
	return nil
}

// ReceiveFD receives a segment's descriptor sent with SendFD and maps it
// (see FromFile: anything but a properly sealed memfd is refused with
// ErrNotSealed).
func ReceiveFD(conn *net.UnixConn) (*Segment, error) {
	buf := make([]byte, 32)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("shm: receive a segment: %w", err)
	}
	if string(buf[:n]) != "shmring-segment" {
		return nil, fmt.Errorf("shm: receive a segment: unexpected message %q", buf[:n])
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("shm: receive a segment: no descriptor in the message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.Join(fmt.Errorf("shm: receive a segment: want one descriptor, got %d", len(fds)), err)
	}
	unix.CloseOnExec(fds[0])
	return FromFile(os.NewFile(uintptr(fds[0]), "memfd:received"))
}

// checkSeals returns nil if fd is a memfd with every seal of RequiredSeals
// and no write seal, else an ErrNotSealed error that says what fd is and
// what is needed.
func checkSeals(fd int) error {
	need := "a ring passed by descriptor must be a memfd sealed with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL (ipc.CreateMemfd makes one; to share a named segment, open it by name instead)"
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
