package shm

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotSealed is returned by FromFile when a memfd segment lacks the seals
// that make it safe to map: it could be shrunk under the mapping. Matches
// ErrPermission.
var ErrNotSealed error = &sentinel{"memfd segment not sealed against shrinking", ErrPermission}

// memfdSeals are the seals every memfd segment carries: it can never shrink
// (no SIGBUS under a mapping), never grow, and the seals cannot change.
const memfdSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

// CreateMemfd makes an anonymous segment (memfd_create) with a body of
// bodySize bytes, calls init to fill the body, and seals it against
// shrinking and growing. It has no name: processes share it by passing its
// descriptor over a Unix socket (SendFD, ReceiveFD). Because nobody can
// truncate it, a reader never meets SIGBUS; use it where processes that can
// write the ring are not trusted not to.
func CreateMemfd(name string, bodySize uint64, init func(body []byte) error) (seg *Segment, err error) {
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
	if _, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, memfdSeals); err != nil {
		return nil, wrap(fmt.Errorf("seal: %w", err))
	}
	return &Segment{path: f.Name(), f: f, mem: mem, header: h}, nil
}

// FromFile maps a segment received as an open file (a memfd from ReceiveFD,
// or any descriptor), validating it as Open does. A memfd must carry the
// shrink and grow seals. The Segment owns f from then on.
func FromFile(f *os.File) (seg *Segment, err error) {
	wrap := func(err error) error { return fmt.Errorf("shm: map %q: %w", f.Name(), err) }
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	fd := int(f.Fd())
	seals, serr := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if serr == nil && seals&(unix.F_SEAL_SHRINK|unix.F_SEAL_GROW) != unix.F_SEAL_SHRINK|unix.F_SEAL_GROW {
		return nil, wrap(fmt.Errorf("seals %#x: %w", seals, ErrNotSealed))
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
// The receiver maps the same memory with ReceiveFD.
func (s *Segment) SendFD(conn *net.UnixConn) error {
	rights := unix.UnixRights(int(s.f.Fd()))
	_, _, err := conn.WriteMsgUnix([]byte("shmring-segment"), rights, nil)
	if err != nil {
		return fmt.Errorf("shm: send %q: %w", s.path, err)
	}
	return nil
}

// ReceiveFD receives a segment's descriptor sent with SendFD and maps it
// (see FromFile).
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
