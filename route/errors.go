package route

import "errors"

// errReroute ends a Send's wait on one ring (from the wait hook the
// Router gives its producers) so that Send looks at every ring again.
// Never returned to a caller.
var errReroute = errors.New("route: look at the other rings again")

// ErrNoRings is returned by New when it is given no ring, or more than
// MaxRings.
var ErrNoRings = errors.New("route: a router needs 1 to 64 rings")
