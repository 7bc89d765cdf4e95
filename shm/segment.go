package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shmring/shmring/internal/printable"
	"golang.org/x/sys/unix"
)

// DefaultDir is where bare segment names live unless an option or the
// environment variable named by DirEnv says otherwise.
const DefaultDir = "/dev/shm"

// DirEnv names the environment variable that overrides DefaultDir.
const DirEnv = "SHMRING_DIR"

// MaxNameLen bounds a bare name (the file system's NAME_MAX less room for the
// temporary name Create uses while it initialises the segment).
const MaxNameLen = 200

// options collects what Create, Open and Remove accept.
type options struct {
	dir        string
	mode       os.FileMode
	readOnly   bool
	trustOwner bool
}

// Option configures Create, Open or Remove.
type Option func(*options)

// Dir resolves bare names in dir instead of $SHMRING_DIR or /dev/shm.
func Dir(dir string) Option { return func(o *options) { o.dir = dir } }

// Mode sets the permission bits of a created segment, exactly, whatever the
// umask. The default is 0600: only the owner may open it.
func Mode(m os.FileMode) Option { return func(o *options) { o.mode = m.Perm() } }

// ReadOnly opens the segment with a read-only mapping, for inspection by a
// process that may only read it. Writing to Body then faults.
func ReadOnly() Option { return func(o *options) { o.readOnly = true } }

// TrustOwner lets Open map a segment owned by another user, or writable by
// anyone; by default both are refused with ErrPermission.
func TrustOwner() Option { return func(o *options) { o.trustOwner = true } }

func collect(opts []Option) options {
	o := options{mode: 0o600}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Resolve returns the file path of a segment name: a name containing a slash
// is a path, used as given; a bare name lives in the directory of the Dir
// option, else $SHMRING_DIR, else /dev/shm.
func Resolve(name string, opts ...Option) (string, error) {
	return collect(opts).resolve(name)
}

func (o options) resolve(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("shm: segment name %q %s: %w", name, why, ErrBadName)
	}
	switch {
	case name == "":
		return bad("is empty")
	case strings.IndexByte(name, 0) >= 0:
		return bad("contains a NUL byte")
	case len(name) > 4000:
		return bad("is longer than 4000 bytes")
	}
	if strings.Contains(name, "/") {
		for _, el := range strings.Split(name, "/") {
			if el == ".." {
				return bad(`has a ".." element; give a path without one`)
			}
		}
		base := filepath.Base(name)
		if base == "." || base == "/" || len(base) > MaxNameLen || strings.HasSuffix(name, "/") {
			return bad(fmt.Sprintf("must end in a file name of 1 to %d bytes", MaxNameLen))
		}
		return filepath.Clean(name), nil
	}
	if name == "." || name == ".." {
		return bad("is not a file name")
	}
	if len(name) > MaxNameLen {
		return bad(fmt.Sprintf("is longer than %d bytes", MaxNameLen))
	}
	dir := o.dir
	if dir == "" {
		dir = os.Getenv(DirEnv)
	}
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, name), nil
}

// Segment is one mapped segment file: a validated header page and a body.
// Its methods are safe for concurrent use; Close must not race with users of
// Body.
type Segment struct {
	path   string
	f      *os.File
	mem    []byte // the whole mapping
	header Header
	ro     bool
	memfd  bool // CreateMemfd, FromFile, ReceiveFD: no directory

	mu     sync.Mutex
	closed bool
}

// Create makes a new segment file at the resolved name with a body of
// bodySize bytes, calls init to fill the body, and only then publishes it
// under its name, so no other process ever opens a half-made segment.
//
// The file is created with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC under a
// temporary name in the same directory, given the exact mode (0600 unless
// the Mode option says otherwise, whatever the umask), its pages allocated
// with fallocate (a full file system fails here with ErrNoSpace, not later
// with SIGBUS), mapped and initialised; then it is hard-linked to its name,
// which fails with ErrExist if anything, even a dangling symbolic link, is
// there. On any failure nothing is left behind. A creator killed on the way
// leaves its temporary file (".NAME.creating-" and 16 hex digits), which it
// holds a lock on while it lives, so that Leftovers tells a dead creator's
// file from a create in progress and RemoveLeftover removes only the first.
//
// The name must be printable (see package internal/printable: no control,
// format or invisible characters, valid UTF-8) and must not have the form
// of a temporary file; else Create fails with ErrBadName.
func Create(name string, bodySize uint64, init func(body []byte) error, opts ...Option) (seg *Segment, err error) {
	o := collect(opts)
	path, err := o.resolve(name)
	if err != nil {
		return nil, err
	}
	if err := checkCreateName(name, path); err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("shm: create %q: %w", path, err) }
	if bodySize == 0 || bodySize > maxBody {
		return nil, wrap(fmt.Errorf("body size %d is out of range (1 to %d bytes)", bodySize, uint64(maxBody)))
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, wrap(fmt.Errorf("the name is taken; remove it first (ringctl rm) or choose another: %w", ErrExist))
	}
	rnd, err := tempRandom()
	if err != nil {
		return nil, wrap(err)
	}
	tmp := filepath.Join(filepath.Dir(path), tempName(filepath.Base(path), rnd))
	fd, err := unix.Open(tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, wrap(fileError(err))
	}
	f := os.NewFile(uintptr(fd), path)
	published := false
	defer func() {
		if err != nil {
			_ = unix.Unlink(tmp)
			if published {
				_ = unix.Unlink(path)
			}
			_ = f.Close()
		}
	}()
	// Held until published: a leftover of a killed creator is told from
	// a create in progress by this lock (see tempMarker).
	if err = lockCreation(fd); err != nil {
		return nil, wrap(err)
	}
	if err = unix.Fchmod(fd, uint32(o.mode)); err != nil {
		return nil, wrap(fmt.Errorf("fchmod %#o: %w", o.mode, err))
	}
	mem, h, err := build(fd, bodySize, init)
	if err != nil {
		return nil, wrap(err)
	}
	defer func() {
		if err != nil {
			_ = unix.Munmap(mem)
		}
	}()
	if err = unix.Linkat(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, 0); err != nil {
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("the name is taken; remove it first (ringctl rm) or choose another: %w", ErrExist)
		} else {
			err = fmt.Errorf("publish: %w", fileError(err))
		}
		return nil, wrap(err)
	}
	published = true
	if err = unix.Unlink(tmp); err != nil {
		return nil, wrap(fmt.Errorf("remove temporary name: %w", err))
	}
	// Releasing a lock we hold cannot fail in practice; if it did, the
	// header page would stay locked, which only ever tells others that
	// this creator lives.
	_ = unlockCreation(fd)
	return &Segment{path: path, f: f, mem: mem, header: h}, nil
}

// build gives a new segment file fd its size, with every page allocated,
// maps it, writes the header page and lets init fill the body. On error
// nothing stays mapped; the caller owns fd either way.
func build(fd int, bodySize uint64, init func(body []byte) error) ([]byte, Header, error) {
	total := HeaderSize + bodySize
	if err := allocate(fd, int64(total)); err != nil {
		return nil, Header{}, err
	}
	mem, err := unix.Mmap(fd, 0, int(total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, Header{}, fmt.Errorf("mmap %d bytes: %w", total, err)
	}
	h := Header{
		Version:      Version,
		BodySize:     bodySize,
		TotalSize:    total,
		CreatedNanos: time.Now().UnixNano(),
		CreatorPID:   uint32(os.Getpid()),
		CreatorUID:   uint32(os.Geteuid()),
	}
	encodeHeader(mem, h)
	if init != nil {
		if err := init(mem[HeaderSize:]); err != nil {
			_ = unix.Munmap(mem)
			return nil, Header{}, err
		}
	}
	return mem, h, nil
}

// allocate gives the file its size with every page allocated, so that a full
// file system fails now rather than as SIGBUS when a page is first touched.
func allocate(fd int, size int64) error {
	err := unix.Fallocate(fd, 0, 0, size)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EFBIG) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("allocate %d bytes: %v: free space in the file system or make the ring smaller: %w", size, err, ErrNoSpace)
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("allocate %d bytes: %w", size, err)
	}
	// No fallocate here: size the file and write every page.
	if err := unix.Ftruncate(fd, size); err != nil {
		return fmt.Errorf("truncate to %d bytes: %w", size, err)
	}
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zero)) {
		n := min(int64(len(zero)), size-off)
		if _, err := unix.Pwrite(fd, zero[:n], off); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return fmt.Errorf("allocate %d bytes: %v: %w", size, err, ErrNoSpace)
			}
			return fmt.Errorf("allocate %d bytes: %w", size, err)
		}
	}
	return nil
}

// Open's and Remove's error for a name with no file (ENOENT): the errno's
// text would say the same as ErrNotExist's, and neither what to do.
var (
	errNoRingOpen   = fmt.Errorf("no such ring (create it first, or check the name and the directory): %w", ErrNotExist)
	errNoRingRemove = fmt.Errorf("no such ring (check the name and the directory): %w", ErrNotExist)
)

// fileError turns an errno from open or link into an error that matches
// the package's sentinels and says what to do.
func fileError(err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%v: %w", err, ErrSymlink)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%v: %w", err, ErrNotExist)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%v: %w", err, ErrExist)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%v: check the segment's owner and mode (ls -l): %w", err, ErrPermission)
	case errors.Is(err, unix.ENOSPC):
		return fmt.Errorf("%v: %w", err, ErrNoSpace)
	case errors.Is(err, unix.EISDIR):
		return fmt.Errorf("%v: %w", err, ErrNotRegular)
	}
	return err
}

// Open maps an existing segment after checking, before mapping anything,
// that it is a regular file (never following a symbolic link), owned by the
// caller and not writable by others (unless TrustOwner), and that its header
// is valid and its size matches the header. Each refusal wraps a specific
// sentinel (see errors.go).
func Open(name string, opts ...Option) (seg *Segment, err error) {
	o := collect(opts)
	path, err := o.resolve(name)
	if err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("shm: open %q: %w", path, err) }
	flags := unix.O_RDWR
	if o.readOnly {
		flags = unix.O_RDONLY
	}
	fd, err := unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, wrap(errNoRingOpen)
	}
	if err != nil {
		return nil, wrap(fileError(err))
	}
	f := os.NewFile(uintptr(fd), path)
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	var st unix.Stat_t
	if err = unix.Fstat(fd, &st); err != nil {
		return nil, wrap(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, wrap(fmt.Errorf("mode %#o: %w", st.Mode, ErrNotRegular))
	}
	if !o.trustOwner {
		if uid := uint32(os.Geteuid()); st.Uid != uid {
			return nil, wrap(fmt.Errorf("owned by uid %d, not by this process's uid %d; pass TrustOwner (ringctl --trust-owner) if that user is trusted: %w", st.Uid, uid, ErrPermission))
		}
		if st.Mode&0o002 != 0 {
			return nil, wrap(fmt.Errorf("mode %#o lets any user write it; chmod o-w, or pass TrustOwner: %w", st.Mode&0o777, ErrPermission))
		}
	}
	var page [HeaderSize]byte
	n, err := unix.Pread(fd, page[:], 0)
	if err != nil {
		return nil, wrap(fmt.Errorf("read header: %w", err))
	}
	h, err := DecodeHeader(page[:n], st.Size)
	if err != nil {
		return nil, wrap(err)
	}
	prot := unix.PROT_READ | unix.PROT_WRITE
	if o.readOnly {
		prot = unix.PROT_READ
	}
	mem, err := unix.Mmap(fd, 0, int(h.TotalSize), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, wrap(fmt.Errorf("mmap %d bytes: %w", h.TotalSize, err))
	}
	return &Segment{path: path, f: f, mem: mem, header: h, ro: o.readOnly}, nil
}

// CheckSize compares the file's size now with the size its header gave when
// it was mapped. Another process that can write the file may truncate it
// after we mapped it, and every access past the new end then raises SIGBUS;
// inspection paths call CheckSize first so that they report a truncated
// segment instead of reading what is left of it. It returns nil if the sizes
// match, else an error wrapping ErrTooSmall (shrunk) or ErrGeometry (grown),
// both matching ErrCorrupt, that says to what size, from what, and what to
// do. It costs one fstat. A sealed memfd (CreateMemfd) can never fail it.
func (s *Segment) CheckSize() error {
	var st unix.Stat_t
	if err := unix.Fstat(int(s.f.Fd()), &st); err != nil {
		return fmt.Errorf("shm: %q: fstat: %w", s.path, err)
	}
	size, want := uint64(st.Size), s.header.TotalSize
	switch {
	case size < want:
		return fmt.Errorf("shm: %q: the file was truncated to %d bytes from %d (the size in its header) after it was mapped, by a process that can write it: "+
			"every process using the ring will crash with SIGBUS when it touches the missing part; stop its producers and consumer, then remove and recreate it "+
			"(ringctl rm, ringctl create), and keep it where only trusted users can write it, or in a sealed memfd: %w", s.path, size, want, ErrTooSmall)
	case size > want:
		return fmt.Errorf("shm: %q: the file grew to %d bytes from %d (the size in its header) after it was mapped, by a process that can write it: "+
			"new openers refuse it; remove and recreate it (ringctl rm, ringctl create): %w", s.path, size, want, ErrGeometry)
	}
	return nil
}

// FD returns the segment's file descriptor, valid until Close.
func (s *Segment) FD() uintptr { return s.f.Fd() }

// Path returns the segment's file path.
func (s *Segment) Path() string { return s.path }

// Dir returns the directory of the segment file; "" for a memfd, which
// has none.
func (s *Segment) Dir() string {
	if s.memfd {
		return ""
	}
	return filepath.Dir(s.path)
}

// OwnerUID returns the segment file's owner (fstat).
func (s *Segment) OwnerUID() (uint32, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(s.f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("shm: %q: fstat: %w", s.path, err)
	}
	return st.Uid, nil
}

// Header returns the decoded header.
func (s *Segment) Header() Header { return s.header }

// ReadOnly reports whether the mapping is read-only.
func (s *Segment) ReadOnly() bool { return s.ro }

// Body returns the segment's body: shared memory that other processes may
// write at any time. Treat every byte of it as untrusted. The slice is valid
// until Close.
func (s *Segment) Body() []byte { return s.mem[HeaderSize:s.header.TotalSize:s.header.TotalSize] }

// Close unmaps the segment and closes its file. Locks taken with Lock are
// independent and must be released on their own. Close is idempotent.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return errors.Join(unix.Munmap(s.mem), s.f.Close())
}

// Remove unlinks the segment at the resolved name, after checking that it is
// a regular file (a symbolic link is refused, never followed) that starts
// with the segment magic, so that it never removes a file it did not make.
// It refuses a temporary file of Create (ErrBadName): its creator may still
// be running; see RemoveLeftover.
// Processes that have it mapped keep their mapping.
func Remove(name string, opts ...Option) error {
	o := collect(opts)
	path, err := o.resolve(name)
	if err != nil {
		return err
	}
	wrap := func(err error) error { return fmt.Errorf("shm: remove %q: %w", path, err) }
	if seg, ok := TempName(filepath.Base(path)); ok {
		return wrap(fmt.Errorf("it is a temporary file of a create of %q, perhaps still running; RemoveLeftover (ringctl doctor %s --repair) removes it once its creator is dead: %w", seg, printable.Quote(seg), ErrBadName))
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) {
		return wrap(errNoRingRemove)
	}
	if err != nil {
		return wrap(fileError(err))
	}
	var magic [8]byte
	n, rerr := unix.Pread(fd, magic[:], 0)
	var st unix.Stat_t
	serr := unix.Fstat(fd, &st)
	_ = unix.Close(fd)
	if serr == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		return wrap(ErrNotRegular)
	}
	if rerr != nil || n != len(magic) || string(magic[:]) != Magic {
		return wrap(fmt.Errorf("not a shmring segment, left in place: %w", ErrBadMagic))
	}
	if err := unix.Unlink(path); err != nil {
		return wrap(fileError(err))
	}
	return nil
}

// IsSegmentName reports whether a directory entry name could be a published
// segment: any name but a temporary file of Create (see TempName). Names
// that start with a dot are segments like any other.
func IsSegmentName(name string) bool {
	_, temp := TempName(name)
	return name != "" && !temp
}
