package main

import (
	"flag"
	"os"

	safe "github.com/shmring/shmring/internal/printable"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/shm"
)

// show returns a ring's name or path as ringctl prints it in text output:
// unchanged if it is safe to print, else quoted with every control, format
// or invisible character escaped (a name made by another tool could hold
// terminal escapes or a bidirectional override). JSON output carries names
// exactly, escaped by the JSON encoder.
func show(name string) string { return safe.Quote(name) }

// location holds the flags that say where a ring is and whom to trust.
type location struct {
	dir   string
	trust bool
}

func (l *location) register(fs *flag.FlagSet) {
	fs.StringVar(&l.dir, "dir", "", "directory for bare names (default $SHMRING_DIR or /dev/shm)")
	fs.BoolVar(&l.trust, "trust-owner", false, "open a ring owned by another user or writable by others")
}

// shmOptions are the options of package shm for the same location.
func (l *location) shmOptions() []shm.Option {
	if l.dir != "" {
		return []shm.Option{shm.Dir(l.dir)}
	}
	return nil
}

func (l *location) options() []ipc.Option {
	var o []ipc.Option
	if l.dir != "" {
		o = append(o, ipc.WithDir(l.dir))
	}
	if l.trust {
		o = append(o, ipc.WithTrustOwner())
	}
	return o
}

// dirAndTrust resolves the directory of ls and serve (--dir, then
// $SHMRING_DIR, then /dev/shm) and the options that trust other owners.
func dirAndTrust(dir string, trust bool) (string, []ipc.Option) {
	if dir == "" {
		dir = os.Getenv(shm.DirEnv)
	}
	if dir == "" {
		dir = shm.DefaultDir
	}
	var opts []ipc.Option
	if trust {
		opts = append(opts, ipc.WithTrustOwner())
	}
	return dir, opts
}
