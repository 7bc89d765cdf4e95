package ipc

import (
	"fmt"
	"net"
	"syscall"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/shm"
)

// Share sends the ring's segment over a Unix socket (conn: a
// *net.UnixConn, or anything else whose descriptor is a connected Unix
// socket) to a process that calls [Receive]. Only a ring created with
// Config.Memfd can be shared (shm.ErrNotSealed otherwise): other processes
// open a named ring by its name. Safe for concurrent use; ErrClosed after
// Close.
func (r *Ring) Share(conn syscall.Conn) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	uc, err := unixConn(conn)
	if err != nil {
		return err
	}
	return r.seg.SendFD(uc)
}

// Receive maps a ring whose segment another process sent with
// [Ring.Share] over conn (a *net.UnixConn, or anything else whose
// descriptor is a connected Unix socket). It accepts only a memfd sealed
// against shrinking, growing and further sealing (shm.RequiredSeals, as
// Config.Memfd seals it) and not against writing: any other descriptor (a
// segment file in /dev/shm or on disk, an unsealed memfd) could be
// truncated by its sender under this process's mapping, and is refused
// before mapping with shm.ErrNotSealed (which matches
// [io/fs.ErrPermission]), saying what was received.
func Receive(conn syscall.Conn) (*Ring, error) {
	uc, err := unixConn(conn)
	if err != nil {
		return nil, err
	}
	seg, err := shm.ReceiveFD(uc)
	if err != nil {
		return nil, err
	}
	return attach(seg)
}

// unixConn bridges to shm's descriptor passing, which takes a
// *net.UnixConn until it takes a syscall.Conn (then this function and
// ipc's import of net go: pass conn through).
func unixConn(conn syscall.Conn) (*net.UnixConn, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok || uc == nil {
		return nil, fmt.Errorf("ipc: descriptor passing needs a Unix socket (*net.UnixConn), not %T: %w", conn, errs.ErrInvalid)
	}
	return uc, nil
}
