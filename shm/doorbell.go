// Doorbell files: the one futex word a wait set sleeps on for many rings
// (docs/layout.md, "Doorbell files"). This file makes, opens, lists and
// removes them; their contents are package ring's (ring/doorbell.go).

package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// DoorbellPrefix starts every doorbell file's name; 16 lowercase hex
// digits, its id, follow.
const DoorbellPrefix = "shmring-doorbell-"

// DoorbellFileSize is a doorbell file's exact size (ring.DoorbellSize).
const DoorbellFileSize = 4096

// DoorbellName is the file name of doorbell id.
func DoorbellName(id uint64) string { return fmt.Sprintf("%s%016x", DoorbellPrefix, id) }

// DoorbellID returns the id of a doorbell file's name, ok false for any
// other name (the id must be 16 lowercase hex digits, not 0).
func DoorbellID(name string) (id uint64, ok bool) {
	hex, found := strings.CutPrefix(name, DoorbellPrefix)
	if !found || len(hex) != 16 || strings.ToLower(hex) != hex {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil && id != 0
}

// Doorbell is a mapped doorbell file. The set that created it holds a lock
// (flock) on it while it lives, so that a leftover of a dead set is told
// from a live one; producers map it without the lock.
type Doorbell struct {
	path    string
	id      uint64
	f       *os.File // the creator's (its lock); nil for an opener, which closes its descriptor once mapped
	mem     []byte
	created bool

	mu     sync.Mutex
	closed bool
}

// CreateDoorbell makes a new doorbell file in dir with a random id (mode
// 0600 unless the Mode option says otherwise, whatever the umask; the Dir
// option is ignored), locks it, calls init to fill its DoorbellFileSize
// bytes, and returns it mapped. The file is created with
// O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC and allocated with fallocate; a set
// publishes the id (ring line 15) only after this returns, so nobody opens
// it half-made. If a leftover cleaner removed the file between its creation
// and the lock, the create is retried under another id.
func CreateDoorbell(dir string, init func(mem []byte, id uint64) error, opts ...Option) (*Doorbell, error) {
	o := collect(opts)
	for range 8 {
		rnd, err := tempRandom() // getrandom(2): shm links no crypto
		if err != nil {
			return nil, fmt.Errorf("shm: create doorbell in %q: %w", dir, err)
		}
		id := binary.LittleEndian.Uint64(rnd[:])
		if id == 0 {
			continue
		}
		d, err := createDoorbell(filepath.Join(dir, DoorbellName(id)), id, o.mode, init)
		if errors.Is(err, errRetry) {
			continue
		}
		return d, err
	}
	return nil, fmt.Errorf("shm: create doorbell in %q: 8 attempts failed (ids taken, or files removed under us): %w", dir, ErrBusy)
}

// errRetry: the new file was taken or removed before it was locked.
var errRetry = errors.New("retry")

func createDoorbell(path string, id uint64, mode os.FileMode, init func(mem []byte, id uint64) error) (d *Doorbell, err error) {
	wrap := func(err error) error { return fmt.Errorf("shm: create doorbell %q: %w", path, err) }
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.EEXIST) {
		return nil, errRetry
	}
	if err != nil {
		return nil, wrap(fileError(err))
	}
	f := os.NewFile(uintptr(fd), path)
	defer func() {
		if err != nil {
			if !errors.Is(err, errRetry) {
				_ = unix.Unlink(path)
			}
			_ = f.Close()
		}
	}()
	if err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, errRetry // a cleaner holds it: it is removing it
	}
	// A cleaner that locked and removed it before our lock leaves us an
	// unlinked file: check that the name is still ours.
	var st, now unix.Stat_t
	if err = unix.Fstat(fd, &st); err != nil {
		return nil, wrap(err)
	}
	if err = unix.Lstat(path, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		return nil, errRetry
	}
	if err = unix.Fchmod(fd, uint32(mode)); err != nil {
		return nil, wrap(fmt.Errorf("fchmod %#o: %w", mode, err))
	}
	if err = allocate(fd, DoorbellFileSize); err != nil {
		return nil, wrap(err)
	}
	mem, err := unix.Mmap(fd, 0, DoorbellFileSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, wrap(fmt.Errorf("mmap: %w", err))
	}
	if err = init(mem, id); err != nil {
		_ = unix.Munmap(mem)
		return nil, wrap(err)
	}
	return &Doorbell{path: path, id: id, f: f, mem: mem, created: true}, nil
}

// OpenDoorbell maps doorbell id of directory dir for a producer: the path
// is built from dir (the directory of the ring the producer opened) and
// the id (which another process wrote: untrusted), never read from a
// segment. It opens with O_RDWR|O_NOFOLLOW|O_CLOEXEC|O_NONBLOCK, no
// O_CREAT, and refuses (ErrNotRegular, ErrGeometry, ErrPermission) anything
// but a regular file of DoorbellFileSize bytes owned by uid (the ring
// file's owner) and not writable by others (no 0o002, the rule for a
// ring's file). Its contents are the caller's to validate.
func OpenDoorbell(dir string, id uint64, uid uint32) (d *Doorbell, err error) {
	path := filepath.Join(dir, DoorbellName(id))
	wrap := func(err error) error { return fmt.Errorf("shm: open doorbell %q: %w", path, err) }
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, wrap(fileError(err))
	}
	defer func() {
		if err != nil {
			_ = unix.Close(fd)
		}
	}()
	var st unix.Stat_t
	if err = unix.Fstat(fd, &st); err != nil {
		return nil, wrap(err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, wrap(fmt.Errorf("mode %#o: %w", st.Mode, ErrNotRegular))
	case st.Size != DoorbellFileSize:
		return nil, wrap(fmt.Errorf("%d bytes, a doorbell has %d: %w", st.Size, DoorbellFileSize, ErrGeometry))
	case st.Uid != uid:
		return nil, wrap(fmt.Errorf("owned by uid %d, the ring by uid %d: %w", st.Uid, uid, ErrPermission))
	case st.Mode&0o002 != 0:
		return nil, wrap(fmt.Errorf("mode %#o is writable by others, which a ring's opener refuses too; a set makes its doorbells without o+w: %w", st.Mode&0o7777, ErrPermission))
	}
	mem, err := unix.Mmap(fd, 0, DoorbellFileSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, wrap(fmt.Errorf("mmap: %w", err))
	}
	// The mapping outlives the descriptor, which an opener does not need
	// (it holds no lock): a producer keeps a doorbell mapped for as long
	// as its ring names it, and should not hold a descriptor that long.
	// A failed close is not an error (the mapping stands) and must not
	// close the number again (the deferred close is for err != nil only):
	// Linux frees the descriptor even when close fails, and another
	// goroutine may hold that number by now.
	_ = unix.Close(fd)
	return &Doorbell{path: path, id: id, mem: mem}, nil
}

// ID returns the doorbell's id.
func (d *Doorbell) ID() uint64 { return d.id }

// Path returns the doorbell file's path.
func (d *Doorbell) Path() string { return d.path }

// Mem returns the mapping: shared memory that other processes may write at
// any time. Valid until Close.
func (d *Doorbell) Mem() []byte { return d.mem }

// Close unmaps the doorbell and closes its file; the creator's Close first
// unlinks it (if its name is still this file), then drops its lock.
// Idempotent.
func (d *Doorbell) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errUnlink error
	if d.created {
		var st, now unix.Stat_t
		if unix.Fstat(int(d.f.Fd()), &st) == nil && unix.Lstat(d.path, &now) == nil && now.Dev == st.Dev && now.Ino == st.Ino {
			if err := unix.Unlink(d.path); err != nil && !errors.Is(err, unix.ENOENT) {
				errUnlink = fmt.Errorf("shm: remove doorbell %q: %w", d.path, err)
			}
		}
	}
	errs := []error{errUnlink, unix.Munmap(d.mem)}
	if d.f != nil { // the creator's: its lock; an opener closed its own at once
		errs = append(errs, d.f.Close())
	}
	return errors.Join(errs...)
}

// DoorbellAlive reports whether the doorbell file at path is held by a live
// set (its lock is held). True also when it cannot tell (err says why):
// never call a set dead on doubt.
func DoorbellAlive(path string) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return true, fmt.Errorf("shm: test doorbell %q: %w", path, fileError(err))
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return true, nil
		}
		return true, fmt.Errorf("shm: test doorbell %q: %w", path, err)
	}
	return false, nil // closing fd drops our lock
}

// RemoveDoorbellLeftover removes the doorbell file at path if its set is
// dead (nobody holds its lock): it takes the lock itself (ErrBusy if a set
// holds it) and unlinks the file while holding it. It refuses a name that
// is not a doorbell's (ErrBadName), a symbolic link or anything but a
// regular file (ErrNotRegular), a file owned by another user
// (ErrPermission), and a file replaced meanwhile (ErrBusy).
func RemoveDoorbellLeftover(path string) error {
	wrap := func(err error) error { return fmt.Errorf("shm: remove doorbell %q: %w", path, err) }
	if _, ok := DoorbellID(filepath.Base(path)); !ok {
		return wrap(fmt.Errorf("not named as a doorbell (%s and 16 hex digits): %w", DoorbellPrefix, ErrBadName))
	}
	fd, st, err := openToRemove(path, unix.O_RDONLY)
	if err != nil {
		return wrap(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return wrap(fmt.Errorf("its wait set is alive (it holds the lock): %w", ErrBusy))
		}
		return wrap(err)
	}
	if err := unlinkSame(path, &st); err != nil {
		return wrap(err)
	}
	return nil
}

// RemoveDeadDoorbells removes every doorbell file in dir whose set is dead
// (RemoveDoorbellLeftover), and returns how many it removed; files it may
// not remove (a live set's, another user's) are left silently, other
// failures are joined in err.
func RemoveDeadDoorbells(dir string) (removed int, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("shm: list doorbells in %q: %w", dir, err)
	}
	var errList []error
	for _, e := range ents {
		if _, ok := DoorbellID(e.Name()); !ok {
			continue
		}
		switch err := RemoveDoorbellLeftover(filepath.Join(dir, e.Name())); {
		case err == nil:
			removed++
		case errors.Is(err, ErrBusy), errors.Is(err, ErrPermission), errors.Is(err, os.ErrNotExist):
		default:
			errList = append(errList, err)
		}
	}
	return removed, errors.Join(errList...)
}
