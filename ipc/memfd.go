package ipc

import (
	"fmt"
	"net"

	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// CreateMemfd makes a ring in an anonymous, sealed segment (memfd_create,
// sealed against shrinking and growing): no file name, no owner or mode to
// get wrong, and nobody can truncate it, so no reader can meet SIGBUS.
// Processes share it by passing the descriptor over a Unix socket: Share on
// one side, Receive on the other. name only labels the memfd (in
// /proc/PID/fd). The options are Create's (WithDir, WithMode do not apply).
func CreateMemfd(name string, opts ...Option) (*Ring, error) {
	o := collect(opts)
	size, err := ring.Size(o.cfg)
	if err != nil {
		return nil, fmt.Errorf("ipc: create %q: %w", name, err)
	}
	seg, err := shm.CreateMemfd(name, size, func(body []byte) error { return initBody(body, o) })
	if err != nil {
		return nil, err
	}
	return attach(seg)
}

// Share sends the ring's segment over a Unix socket to a process that calls
// Receive. Only a ring made by CreateMemfd can be shared (shm.ErrNotSealed
// otherwise): other processes open a named ring by its name.
func (r *Ring) Share(conn *net.UnixConn) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	return r.seg.SendFD(conn)
}

// Receive maps a ring whose segment another process sent with Share. It
// accepts only a memfd sealed against shrinking, growing and further sealing
// (shm.RequiredSeals, as CreateMemfd seals it) and not against writing: any
// other descriptor (a segment file in /dev/shm or on disk, an unsealed
// memfd) could be truncated by its sender under this process's mapping, and
// is refused before mapping with shm.ErrNotSealed (which matches
// ErrPermission), saying what was received.
func Receive(conn *net.UnixConn) (*Ring, error) {
	seg, err := shm.ReceiveFD(conn)
	if err != nil {
		return nil, err
	}
	return attach(seg)
}
