package ops

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/shm"
)

// Entry is one file of List.
type Entry struct {
	Name  string    // the file's name in the directory, exactly (it may be unsafe to print: see printable.Quote)
	Path  string    // dir joined with Name
	Stats ipc.Stats // the ring's configuration and counters, when Err is nil and it is not Creating
	// Routing is the ring's routing counters (see Routing), when Err is
	// nil and it is not Creating.
	Routing RouteCounters
	// Bridges are the ring's bridge blocks (see Bridges), when Err is nil
	// and it is not Creating; none if no bridge ever ran on it (or they
	// could not be read: Stats could, so the ring is listed).
	Bridges []Bridge
	Err     error // why it could not be read (not a ring, damaged, not ours): test it with errors.Is
	// Damage is what Validate found wrong with the ring's words (an error
	// matching ipc.ErrCorrupt), when Err is nil and it is not Creating;
	// nil if nothing.
	Damage error

	// Creating marks a temporary file of Create (".NAME.creating-" and 16
	// hex digits), which List does not open: a ring being created, or the
	// leftover of a creator killed before it published the ring. Ring is
	// the NAME it was for. CreatorAlive says whether its creator still runs
	// (true also when that could not be tested; Err then says why): a dead
	// creator's file can go (ringctl doctor NAME --repair).
	Creating     bool
	Ring         string
	CreatorAlive bool
}

// List reads every regular file in dir: each segment (names that start with
// a dot included) opened read-only just long enough to read its counters,
// and each temporary file of Create reported as such (Creating), not
// opened. Files that are not readable rings are listed with their error
// (ipc.ErrCorrupt for a file that is not a segment, fs.ErrPermission for
// one whose owner is not trusted, ...). Entries are sorted by name. The
// options are ipc.Open's (ipc.WithTrustOwner); ipc.WithReadOnly is
// always added. Only an unreadable dir is an error.
func List(dir string, opts ...ipc.Option) ([]Entry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if _, ok := shm.DoorbellID(e.Name()); ok {
			continue // a wait set's doorbell (docs/waitset.md), not a ring
		}
		info := Entry{Name: e.Name(), Path: filepath.Join(dir, e.Name())}
		if !shm.IsSegmentName(e.Name()) {
			l := shm.InspectLeftover(info.Path)
			info.Creating, info.Ring, info.CreatorAlive, info.Err = true, l.Segment, l.CreatorAlive, l.Err
			out = append(out, info)
			continue
		}
		r, err := ipc.Open(info.Path, append(opts[:len(opts):len(opts)], ipc.WithReadOnly())...)
		if err == nil {
			info.Stats, err = r.Stats()
			if err == nil {
				info.Routing, err = Routing(r)
				info.Bridges, _ = Bridges(r)
				if info.Damage = Validate(r); info.Damage != nil && !isDamage(info.Damage) {
					info.Err, info.Damage = info.Damage, nil
				}
			}
			_ = r.Close()
		}
		if err != nil {
			info.Err = err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
