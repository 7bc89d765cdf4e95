package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shmring/shmring/internal/printable"
	"golang.org/x/sys/unix"
)

// Create builds a segment under a temporary name in the same directory,
// ".NAME.creating-" and 16 lowercase hex digits, and holds an exclusive
// open-file-description lock on the file's header page, [0, HeaderSize),
// from just after it creates the file until it has published it (or failed
// and removed it). A creator killed on the way leaves the temporary file
// behind, unlocked: the kernel drops the lock with the creator, in any PID
// namespace. So a temporary file whose lock is free is a leftover that can
// be removed, and one whose lock is held is a create in progress that must
// be left alone. The role locks lie in the body, so this lock never meets
// them, even on a leftover that is a second name of a published segment
// (a creator killed between link and unlink).
const (
	tempMarker      = ".creating-"
	tempRandLen     = 16 // hex digits
	creationLockLen = HeaderSize
)

// tempName is Create's temporary name for the segment file base.
func tempName(base string, rnd [8]byte) string {
	const digits = "0123456789abcdef"
	var h [tempRandLen]byte
	for i, b := range rnd {
		h[2*i], h[2*i+1] = digits[b>>4], digits[b&15]
	}
	return "." + base + tempMarker + string(h[:])
}

// tempRandom returns the random part of a temporary name, from getrandom(2)
// (the kernel's generator; not crypto/rand, so that shm links no crypto).
// The name needs to be unpredictable only so that two creators rarely pick
// the same one; O_EXCL makes a collision an error, never a shared file.
func tempRandom() ([8]byte, error) {
	var rnd [8]byte
	for got := 0; got < len(rnd); {
		n, err := unix.Getrandom(rnd[got:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return rnd, fmt.Errorf("random bytes for the temporary file name: %w "+
				"(the kernel's random source is unavailable: getrandom needs Linux 3.17 or later)",
				os.NewSyscallError("getrandom", err))
		}
		got += n
	}
	return rnd, nil
}

// TempName reports whether a directory entry name is a temporary file of
// Create (".NAME.creating-" and 16 hex digits) and, if so, the name of the
// segment it was creating.
func TempName(entry string) (segment string, ok bool) {
	i := strings.LastIndex(entry, tempMarker)
	if i < 2 || entry[0] != '.' || len(entry)-i-len(tempMarker) != tempRandLen {
		return "", false
	}
	for _, c := range entry[i+len(tempMarker):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return entry[1:i], true
}

// lockCreation takes the creation lock on a new temporary file.
func lockCreation(fd int) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: creationLockLen}
	err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("another process locked the temporary file as soon as it was made (ringctl doctor --repair removing it as a leftover?); try again: %w", ErrBusy)
	}
	if err != nil {
		return fmt.Errorf("lock the temporary file: %w", err)
	}
	return nil
}

// unlockCreation releases the creation lock once the segment is published.
func unlockCreation(fd int) error {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 0, Len: creationLockLen}
	return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
}

// A Leftover is a temporary file of Create: a create in progress, or the
// trace of a creator that died before it published the segment (it is
// never a published segment's only name).
type Leftover struct {
	Path    string
	Segment string // the name of the segment it was creating
	Size    int64
	// CreatorAlive: its creator still holds the creation lock; leave the
	// file alone, it disappears when the create ends. True also when the
	// lock could not be tested (Err says why): never call a creator dead
	// on doubt.
	CreatorAlive bool
	Err          error
}

// InspectLeftover describes the temporary file of Create at path, testing
// whether its creator still runs (see tempMarker). It does not change it.
func InspectLeftover(path string) Leftover {
	l := Leftover{Path: path, CreatorAlive: true}
	seg, ok := TempName(filepath.Base(path))
	if !ok {
		l.Err = fmt.Errorf("shm: %q is not a temporary file of Create: %w", path, ErrBadName)
		return l
	}
	l.Segment = seg
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		l.Err = fmt.Errorf("shm: test leftover %q: %w", path, fileError(err))
		return l
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		l.Err = fmt.Errorf("shm: test leftover %q: %w", path, err)
		return l
	}
	l.Size = st.Size
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: creationLockLen}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil {
		l.Err = fmt.Errorf("shm: test leftover %q: %w", path, err)
		return l
	}
	l.CreatorAlive = lk.Type != unix.F_UNLCK
	return l
}

// Leftovers lists the temporary files of Create for the segment name (a
// bare name resolved as by Open, or a path) in its directory, with whether
// each one's creator still runs. It changes nothing.
func Leftovers(name string, opts ...Option) ([]Leftover, error) {
	path, err := collect(opts).resolve(name)
	if err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	ents, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return nil, fmt.Errorf("shm: list leftovers of %q: %w", path, err)
	}
	var out []Leftover
	for _, e := range ents {
		if seg, ok := TempName(e.Name()); ok && seg == base {
			out = append(out, InspectLeftover(filepath.Join(dir, e.Name())))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// RemoveLeftover removes the temporary file of Create at path once its
// creator is dead, and never while it runs: it takes the creation lock
// itself (ErrBusy if the creator holds it) and unlinks the file while
// holding it, so a creator cannot be mid-way through publishing it. It
// refuses a path that is not named as a temporary file of Create
// (ErrBadName), is not a regular file, is a symbolic link, was replaced
// meanwhile, or is owned by another user (ErrPermission: remove that by
// hand, as that user). A creator that made the file an instant before and
// had not yet taken its lock fails its create with ErrBusy instead of
// publishing a segment without its file.
func RemoveLeftover(path string) error {
	wrap := func(err error) error { return fmt.Errorf("shm: remove leftover %q: %w", path, err) }
	if _, ok := TempName(filepath.Base(path)); !ok {
		return wrap(fmt.Errorf("not named as a temporary file of Create (.NAME%sHEX): %w", tempMarker, ErrBadName))
	}
	fd, st, err := openToRemove(path, unix.O_RDWR)
	if err != nil {
		return wrap(err)
	}
	defer unix.Close(fd)
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: creationLockLen}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return wrap(fmt.Errorf("its creator is still running (it holds the creation lock); leave it, it goes when the create ends: %w", ErrBusy))
		}
		return wrap(err)
	}
	if err := unlinkSame(path, &st); err != nil {
		return wrap(err)
	}
	return nil
}

// openToRemove opens path for a remover of leftovers (flags: the access
// mode), without following a symbolic link or blocking on a FIFO, and
// checks that it is a regular file owned by this process's user: a remover
// refuses anything else. The caller closes fd.
func openToRemove(path string, flags int) (fd int, st unix.Stat_t, err error) {
	fd, err = unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, st, fileError(err)
	}
	switch err = unix.Fstat(fd, &st); {
	case err != nil:
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = fmt.Errorf("mode %#o: %w", st.Mode, ErrNotRegular)
	default:
		if uid := uint32(os.Geteuid()); st.Uid != uid {
			err = fmt.Errorf("owned by uid %d, not by this process's uid %d; remove it as that user: %w", st.Uid, uid, ErrPermission)
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}

// unlinkSame unlinks path if it still names the file st describes (the one
// the remover opened and locked), else leaves it (ErrBusy); nil on success.
func unlinkSame(path string, st *unix.Stat_t) error {
	var now unix.Stat_t
	if err := unix.Lstat(path, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		return fmt.Errorf("the file was replaced while it was examined; left in place: %w", ErrBusy)
	}
	if err := unix.Unlink(path); err != nil {
		return fileError(err)
	}
	return nil
}

// checkCreateName refuses, at Create, a name that would be unsafe to print
// or that has the form of a temporary file of Create (which ringctl doctor
// --repair would take for a leftover).
func checkCreateName(name, path string) error {
	if err := printable.Check(name); err != nil {
		return fmt.Errorf("shm: segment name %q %s: a name must be printable (letters, digits, punctuation, symbols, spaces; no control, format or invisible characters), so that every tool shows it as it is; choose another: %w", name, err, ErrBadName)
	}
	if _, ok := TempName(filepath.Base(path)); ok {
		return fmt.Errorf("shm: segment name %q has the form of a temporary file of Create (.NAME%sHEX), which ringctl doctor --repair removes; choose another: %w", name, tempMarker, ErrBadName)
	}
	if _, ok := DoorbellID(filepath.Base(path)); ok {
		return fmt.Errorf("shm: segment name %q has the form of a wait set's doorbell file (%sHEX); choose another: %w", name, DoorbellPrefix, ErrBadName)
	}
	return nil
}
