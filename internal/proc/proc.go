// Package proc identifies processes across PID reuse: a PID together with
// the process's start time (clock ticks since boot, from /proc/PID/stat) names
// one process for as long as the machine runs, but only inside one PID
// namespace: a process in a container sees other numbers than the host does.
// PIDNamespace names the namespace a PID belongs to, and Gone checks a
// recorded process only where that namespace is the caller's own.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// StartTime returns the start time of process pid in clock ticks since
// boot (field 22 of /proc/PID/stat).
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTime(b)
}

// parseStartTime reads field 22 of a /proc/PID/stat line. The command name
// (field 2) is in parentheses and may itself hold spaces and parentheses,
// so fields are counted from the last ')'.
func parseStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc: malformed stat line")
	}
	fields := bytes.Fields(b[i+1:]) // fields 3, 4, ...
	const idx = 22 - 3
	if len(fields) <= idx {
		return 0, fmt.Errorf("proc: stat line has %d fields after the command", len(fields))
	}
	return strconv.ParseUint(string(fields[idx]), 10, 64)
}

// SelfStartTime returns the calling process's start time in clock ticks
// since boot. It reads /proc/self, which is right even where the /proc
// mounted here belongs to another PID namespace (then /proc/<getpid()> may
// be another process, or none).
func SelfStartTime() (uint64, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTime(b)
}

// PIDNamespace returns the identifier of the calling process's PID
// namespace: the inode number of /proc/self/ns/pid (the number in
// "pid:[4026531836]"), which the kernel keeps unique among the namespaces
// that exist. It returns 0 when it cannot be read (no /proc, or a kernel
// without namespaces); 0 means "unknown" wherever it is recorded. The value
// is read once per process: a process cannot change its own PID namespace
// (unshare and setns change only that of its future children).
func PIDNamespace() uint64 { return self().ns }

// self is what this process knows about its PID namespace, read once.
var self = sync.OnceValue(func() selfNS {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return selfNS{}
	}
	// /proc/self names this process in the PID namespace of the procfs
	// mounted at /proc. Only if that is our own namespace does /proc/PID
	// describe the process we know as PID.
	link, err := os.Readlink("/proc/self")
	return selfNS{ns: st.Ino, procIsOurs: err == nil && link == strconv.Itoa(os.Getpid())}
})

type selfNS struct {
	ns         uint64 // inode of our PID namespace, 0 unknown
	procIsOurs bool   // /proc shows our PID namespace's processes
}

// Gone reports whether the process recorded as pid, started at start, in
// the PID namespace ns (a PIDNamespace value) is known to have exited or
// been replaced by another process under the same PID. It can know only
// when ns is the caller's own namespace (and the /proc mounted here shows
// it): in any other namespace, or if ns is 0 (unknown), the PID means
// nothing here and Gone returns false. It also returns false when it cannot
// tell (a /proc entry hidden by hidepid while the PID exists): a caller
// deciding liveness must never declare a process dead on doubt.
func Gone(pid int, start, ns uint64) bool {
	me := self()
	if ns == 0 || ns != me.ns || !me.procIsOurs {
		return false
	}
	if pid <= 0 {
		return true // recorded in our namespace, but no process has PID 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		// kill(pid, 0) sees past hidepid: ESRCH is the only proof.
		return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
	}
	return !aliveStat(b, start)
}

// Alive reports whether the process pid that started at start is still
// running (a zombie counts as gone: it will never write again).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	return aliveStat(b, start)
}

// aliveStat reports whether the /proc/PID/stat line b is of a running
// process that started at start.
func aliveStat(b []byte, start uint64) bool {
	st, err := parseStartTime(b)
	if err != nil || st != start {
		return false
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}

// DieWithParent makes the calling process receive SIGKILL when its parent
// exits, and exits at once if the parent is already gone: a re-executed
// child (a test's or a benchmark's producer that loops until killed) must
// not outlive a parent that failed or was killed before it could reap it.
// The kernel ties the signal to the thread that forked the child; the Go
// runtime does not end its threads while the process runs, so that is the
// parent's lifetime.
func DieWithParent() {
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	if os.Getppid() == 1 {
		os.Exit(3)
	}
}
