// Package proc identifies processes across PID reuse: a PID together with
// the process's start time (clock ticks since boot, from /proc/PID/stat) names
// one process for as long as the machine runs.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

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
