package ops

import (
	"fmt"

	"github.com/shmring/shmring/internal/errs"
	"github.com/shmring/shmring/internal/handle"
	"github.com/shmring/shmring/ipc"
)

// enter returns r's internals with the segment held mapped (release with
// h.Leave), or the ring's ErrClosed after its Close; a nil r is
// fs.ErrInvalid.
func enter(op string, r *ipc.Ring) (*handle.Ring, error) {
	if r == nil {
		return nil, fmt.Errorf("ops: %s: the ring is nil; pass a ring from ipc.Open or ipc.Create: %w", op, errs.ErrInvalid)
	}
	h := handle.Of(r)
	if err := h.Enter(); err != nil {
		return nil, err
	}
	return h, nil
}

// writable returns ErrReadOnly, saying what to do, if h's segment is
// mapped read-only.
func writable(op string, h *handle.Ring) error {
	if h.Seg.ReadOnly() {
		return fmt.Errorf("ops: %s %q: the ring is open read-only; open it without ipc.WithReadOnly, as a user who may write its file, to change it: %w", op, h.Seg.Path(), ErrReadOnly)
	}
	return nil
}
