package shm_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// childEnv makes the test binary a child process that creates the segment
// it names and stops inside Create, before publishing it, until killed.
const childEnv = "SHMRING_SHM_TEST_HANG_IN_CREATE"

func TestMain(m *testing.M) { testutil.MainWithChildren(m, childEnv, testutil.HangInCreate) }

func create(t *testing.T, name string, body uint64, opts ...shm.Option) *shm.Segment {
	t.Helper()
	seg, err := shm.Create(name, body, func(b []byte) error {
		copy(b, "body!")
		return nil
	}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = seg.Close() })
	return seg
}

func TestCreateOpenRemove(t *testing.T) {
	name := testutil.Name(t)
	seg := create(t, name, 1<<16)
	require.Equal(t, "/dev/shm/"+name, seg.Path())
	require.Len(t, seg.Body(), 1<<16)

	other, err := shm.Open(name)
	require.NoError(t, err)
	require.Equal(t, "body!", string(other.Body()[:5]))
	other.Body()[5] = '?'
	require.Equal(t, byte('?'), seg.Body()[5], "both mappings share the pages")
	require.NoError(t, other.Close())
	require.NoError(t, other.Close(), "Close is idempotent")

	st, err := os.Stat(seg.Path())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.Equal(t, int64(shm.HeaderSize+1<<16), st.Size())

	_, err = shm.Create(name, 1<<12, nil)
	require.ErrorIs(t, err, shm.ErrExist)

	require.NoError(t, shm.Remove(name))
	_, err = shm.Open(name)
	require.ErrorIs(t, err, shm.ErrNotExist)
	require.ErrorIs(t, shm.Remove(name), shm.ErrNotExist)
	require.Empty(t, testutil.Leftovers())
}

func TestModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	seg := create(t, testutil.Name(t), 4096)
	st, err := os.Stat(seg.Path())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	syscall.Umask(0o077)
	seg = create(t, testutil.Name(t), 4096, shm.Mode(0o640))
	st, err = os.Stat(seg.Path())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), st.Mode().Perm())
}

func TestDirOptionAndEnv(t *testing.T) {
	dir := t.TempDir()
	seg := create(t, "ring", 4096, shm.Dir(dir))
	require.Equal(t, filepath.Join(dir, "ring"), seg.Path())
	t.Setenv(shm.DirEnv, dir)
	p, err := shm.Resolve("ring")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "ring"), p)
	s2, err := shm.Open("ring")
	require.NoError(t, err)
	require.NoError(t, s2.Close())
	// A path is used as given.
	s3, err := shm.Open(filepath.Join(dir, "ring"))
	require.NoError(t, err)
	require.NoError(t, s3.Close())
	require.NoError(t, shm.Remove("ring"))
}

func TestBadNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a\x00b", strings.Repeat("x", shm.MaxNameLen+1), "../etc/ring", "/dev/shm/../x", "dir/", "/tmp/" + strings.Repeat("y", 300)} {
		_, err := shm.Resolve(name)
		require.ErrorIs(t, err, shm.ErrBadName, "%q", name)
		_, err = shm.Create(name, 4096, nil)
		require.ErrorIs(t, err, shm.ErrBadName, "%q", name)
		_, err = shm.Open(name)
		require.ErrorIs(t, err, shm.ErrBadName, "%q", name)
	}
}

func TestSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, []byte("precious"), 0o600))
	link := filepath.Join(dir, "ring")
	require.NoError(t, os.Symlink(target, link))

	_, err := shm.Create(link, 4096, nil)
	require.ErrorIs(t, err, shm.ErrExist)
	_, err = shm.Open(link)
	require.ErrorIs(t, err, shm.ErrSymlink)
	require.ErrorIs(t, err, shm.ErrPermission)
	require.ErrorIs(t, shm.Remove(link), shm.ErrSymlink)

	// A dangling link is refused too, and nothing is created at its target.
	dangling := filepath.Join(dir, "dangling")
	require.NoError(t, os.Symlink(filepath.Join(dir, "nowhere"), dangling))
	_, err = shm.Create(dangling, 4096, nil)
	require.ErrorIs(t, err, shm.ErrExist)
	_, err = os.Lstat(filepath.Join(dir, "nowhere"))
	require.ErrorIs(t, err, os.ErrNotExist)

	b, err := os.ReadFile(target)
	require.NoError(t, err)
	require.Equal(t, "precious", string(b))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 3, "no temporary file left behind")
}

func TestNoSpaceLeavesNothing(t *testing.T) {
	var fs unix.Statfs_t
	require.NoError(t, unix.Statfs("/dev/shm", &fs))
	total := fs.Blocks * uint64(fs.Bsize)
	name := testutil.Name(t)
	// More than the whole tmpfs: fallocate refuses at once, before
	// allocating anything.
	_, err := shm.Create(name, total+1<<30, nil)
	require.ErrorIs(t, err, shm.ErrNoSpace)
	require.Contains(t, err.Error(), "free space")
	require.Empty(t, testutil.Leftovers())
}

func TestInitFailureLeavesNothing(t *testing.T) {
	name := testutil.Name(t)
	boom := errors.New("boom")
	_, err := shm.Create(name, 4096, func([]byte) error { return boom })
	require.ErrorIs(t, err, boom)
	require.Empty(t, testutil.Leftovers())
}

// writeSegment makes a valid segment file, lets spoil damage its bytes, and
// returns its path.
func writeSegment(t *testing.T, spoil func([]byte) []byte) string {
	t.Helper()
	name := testutil.Name(t)
	seg := create(t, name, 8192)
	b, err := os.ReadFile(seg.Path())
	require.NoError(t, err)
	require.NoError(t, seg.Close())
	require.NoError(t, os.Remove(seg.Path()))
	require.NoError(t, os.WriteFile(seg.Path(), spoil(b), 0o600))
	return seg.Path()
}

func reseal(b []byte) {
	binary.LittleEndian.PutUint32(b[72:], crc32.Checksum(b[:72], crc32.MakeTable(crc32.Castagnoli)))
}

func TestOpenRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func([]byte) []byte
		want  []error
	}{
		{"empty file", func([]byte) []byte { return nil }, []error{shm.ErrTooSmall, shm.ErrCorrupt}},
		{"shorter than header", func(b []byte) []byte { return b[:100] }, []error{shm.ErrTooSmall}},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, []error{shm.ErrBadMagic, shm.ErrCorrupt}},
		{"byte order", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 0x01020304)
			reseal(b)
			return b
		}, []error{shm.ErrByteOrder, shm.ErrIncompatible}},
		{"version", func(b []byte) []byte { b[12] = 2; reseal(b); return b }, []error{shm.ErrVersion, shm.ErrIncompatible}},
		{"checksum", func(b []byte) []byte { b[33] ^= 1; return b }, []error{shm.ErrChecksum, shm.ErrCorrupt}},
		{"sizes do not add up", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[40:], 1<<20)
			reseal(b)
			return b
		}, []error{shm.ErrGeometry, shm.ErrCorrupt}},
		{"truncated body", func(b []byte) []byte { return b[:len(b)-4096] }, []error{shm.ErrTooSmall, shm.ErrCorrupt}},
		{"longer than header says", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, []error{shm.ErrGeometry}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeSegment(t, tc.spoil)
			_, err := shm.Open(path)
			for _, w := range tc.want {
				require.ErrorIs(t, err, w)
			}
			require.Contains(t, err.Error(), path)
		})
	}
}

func TestOpenRefusesUntrusted(t *testing.T) {
	seg := create(t, testutil.Name(t), 4096)
	require.NoError(t, os.Chmod(seg.Path(), 0o606))
	_, err := shm.Open(seg.Path())
	require.ErrorIs(t, err, shm.ErrPermission)
	s, err := shm.Open(seg.Path(), shm.TrustOwner())
	require.NoError(t, err)
	require.NoError(t, s.Close())

	dir := t.TempDir()
	_, err = shm.Open(dir)
	require.ErrorIs(t, err, shm.ErrNotRegular)
}

func TestReadOnly(t *testing.T) {
	seg := create(t, testutil.Name(t), 4096)
	ro, err := shm.Open(seg.Path(), shm.ReadOnly())
	require.NoError(t, err)
	defer ro.Close()
	require.True(t, ro.ReadOnly())
	require.Equal(t, "body!", string(ro.Body()[:5]))
	_, err = ro.Lock(0, 8)
	require.Error(t, err)
}

func TestRemoveRefusesForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes")
	require.NoError(t, os.WriteFile(path, []byte("not a segment at all"), 0o600))
	require.ErrorIs(t, shm.Remove(path), shm.ErrBadMagic)
	_, err := os.Stat(path)
	require.NoError(t, err)
}

func TestLocks(t *testing.T) {
	seg := create(t, testutil.Name(t), 4096)
	other, err := shm.Open(seg.Path())
	require.NoError(t, err)
	defer other.Close()

	locked, err := other.Locked(128, 8)
	require.NoError(t, err)
	require.False(t, locked)
	l, err := seg.Lock(128, 8)
	require.NoError(t, err)
	locked, err = other.Locked(128, 8)
	require.NoError(t, err)
	require.True(t, locked)
	locked, err = seg.Locked(128, 8)
	require.NoError(t, err)
	require.True(t, locked, "a Lock has its own open file description")
	_, err = other.Lock(128, 8)
	require.ErrorIs(t, err, shm.ErrBusy)
	_, err = seg.Lock(128, 8)
	require.ErrorIs(t, err, shm.ErrBusy, "two Locks in one process conflict")
	l2, err := seg.Lock(256, 8)
	require.NoError(t, err, "disjoint ranges do not conflict")
	require.NoError(t, l.Unlock())
	require.NoError(t, l.Unlock())
	locked, err = other.Locked(128, 8)
	require.NoError(t, err)
	require.False(t, locked)
	require.NoError(t, l2.Unlock())
}

func TestMemfd(t *testing.T) {
	seg, err := shm.CreateMemfd("t", 8192, func(b []byte) error { copy(b, "memfd!"); return nil })
	require.NoError(t, err)
	defer seg.Close()
	require.Equal(t, "memfd!", string(seg.Body()[:6]))
	require.ErrorIs(t, unix.Ftruncate(int(seg.FD()), 4096), unix.EPERM, "sealed against shrinking")
	require.ErrorIs(t, unix.Ftruncate(int(seg.FD()), 1<<20), unix.EPERM, "and growing")

	// Passed over a socket, it maps the same memory.
	a, b := testutil.UnixPair(t)
	require.NoError(t, seg.SendFD(a))
	other, err := shm.ReceiveFD(b)
	require.NoError(t, err)
	defer other.Close()
	other.Body()[0] = 'M'
	require.Equal(t, byte('M'), seg.Body()[0])
	l, err := other.Lock(128, 8)
	require.NoError(t, err, "role locks work on a memfd")
	require.NoError(t, l.Unlock())

	// An unsealed memfd is refused: it could shrink under the mapping.
	fd, err := unix.MemfdCreate("unsealed", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	require.NoError(t, err)
	_, err = shm.FromFile(os.NewFile(uintptr(fd), "unsealed"))
	require.ErrorIs(t, err, shm.ErrNotSealed)
	require.ErrorIs(t, err, shm.ErrPermission)
}

// memfdWith returns a memfd holding a copy of a valid segment, created with
// or without MFD_ALLOW_SEALING and sealed with seals (0: none added).
func memfdWith(t *testing.T, allowSealing bool, seals int) *os.File {
	t.Helper()
	seg := create(t, testutil.Name(t), 8192)
	flags := unix.MFD_CLOEXEC
	if allowSealing {
		flags |= unix.MFD_ALLOW_SEALING
	}
	fd, err := unix.MemfdCreate("test", flags)
	require.NoError(t, err)
	f := os.NewFile(uintptr(fd), "memfd:test")
	content, err := os.ReadFile(seg.Path())
	require.NoError(t, err)
	_, err = f.WriteAt(content, 0)
	require.NoError(t, err)
	if seals != 0 {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
		require.NoError(t, err)
	}
	return f
}

// TestFromFileRequiresSeals: a descriptor is mapped only if it is a memfd
// sealed against shrinking, growing and further sealing; everything else
// (a plain segment file in /dev/shm or on disk, a pipe, a memfd without the
// seals or sealed against writing) is refused with ErrNotSealed, before
// mapping, by an error that says what was received and what is needed. A
// sender could truncate any of those under the receiver's mapping.
func TestFromFileRequiresSeals(t *testing.T) {
	openPath := func(path string) *os.File {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		require.NoError(t, err)
		return f
	}
	for _, tc := range []struct {
		name string
		file func(t *testing.T) *os.File
		want []string // in the error
	}{
		{"segment file in /dev/shm", func(t *testing.T) *os.File {
			return openPath(create(t, testutil.Name(t), 8192).Path())
		}, []string{"regular file", `"/dev/shm/`, "seals F_SEAL_SEAL, missing F_SEAL_SHRINK|F_SEAL_GROW"}},
		{"segment file on disk", func(t *testing.T) *os.File {
			return openPath(create(t, filepath.Join(t.TempDir(), "seg"), 8192).Path())
		}, []string{"regular file", "cannot carry seals"}},
		{"pipe", func(t *testing.T) *os.File {
			r, w, err := os.Pipe()
			require.NoError(t, err)
			t.Cleanup(func() { _ = w.Close() })
			return r
		}, []string{"a pipe", "cannot carry seals"}},
		{"memfd without sealing", func(t *testing.T) *os.File {
			return memfdWith(t, false, 0)
		}, []string{"seals F_SEAL_SEAL, missing F_SEAL_SHRINK|F_SEAL_GROW", "memfd:test"}},
		{"memfd unsealed", func(t *testing.T) *os.File {
			return memfdWith(t, true, 0)
		}, []string{"seals none, missing F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW"}},
		{"memfd shrink only", func(t *testing.T) *os.File {
			return memfdWith(t, true, unix.F_SEAL_SHRINK)
		}, []string{"missing F_SEAL_SEAL|F_SEAL_GROW"}},
		{"memfd not sealed against sealing", func(t *testing.T) *os.File {
			return memfdWith(t, true, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW)
		}, []string{"missing F_SEAL_SEAL"}},
		{"memfd sealed against writing", func(t *testing.T) *os.File {
			return memfdWith(t, true, shm.RequiredSeals|unix.F_SEAL_WRITE)
		}, []string{"F_SEAL_WRITE forbids mapping it writable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.file(t)
			seg, err := shm.FromFile(f)
			if seg != nil {
				_ = seg.Close()
			}
			require.ErrorIs(t, err, shm.ErrNotSealed)
			require.ErrorIs(t, err, shm.ErrPermission)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.Contains(t, err.Error(), "memfd sealed with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL", "the error says what is needed")
			require.Error(t, f.Close(), "FromFile closed the refused descriptor")
		})
	}

	// The good path: a memfd sealed like CreateMemfd's maps, and sealing
	// makes truncation impossible.
	f := memfdWith(t, true, shm.RequiredSeals)
	seg, err := shm.FromFile(f)
	require.NoError(t, err)
	defer seg.Close()
	require.Equal(t, "body!", string(seg.Body()[:5]))
	require.ErrorIs(t, unix.Ftruncate(int(seg.FD()), 4096), unix.EPERM)
}

// TestSendFDRequiresSeals: a named segment cannot be sent: the receiver
// would refuse it, so the sender refuses first.
func TestSendFDRequiresSeals(t *testing.T) {
	seg := create(t, testutil.Name(t), 8192)
	a, _ := testutil.UnixPair(t)
	err := seg.SendFD(a)
	require.ErrorIs(t, err, shm.ErrNotSealed)
	require.Contains(t, err.Error(), "open it by name instead")
}

// TestCreateRefusesUnprintableNames: a name with a control, format or
// invisible character, or invalid UTF-8, would print as something else
// (or rewrite the terminal) wherever a tool shows it; Create refuses it
// with ErrBadName, saying which character and where, and so does a name of
// the form of Create's temporary files. Nothing is left behind.
func TestCreateRefusesUnprintableNames(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, want string }{
		{"esc\x1b[2Jcleared", "U+001B at byte 3"},
		{"new\nline", "U+000A at byte 3"},
		{"tab\tbed", "U+0009"},
		{"del\x7f", "U+007F"},
		{"c1\u009b31m", "U+009B"},
		{"\u202eexe.txt", "U+202E at byte 0"},
		{"zero\u200bwidth", "U+200B"},
		{"bad\xffutf8", "not valid UTF-8 (0xff) at byte 3"},
		{filepath.Join(dir, "sub\x1bdir", "x"), "U+001B"},
		{".orders.creating-0123456789abcdef", "has the form of a temporary file of Create"},
	} {
		_, err := shm.Create(tc.name, 4096, nil, shm.Dir(dir))
		require.ErrorIs(t, err, shm.ErrBadName, "%q", tc.name)
		require.Contains(t, err.Error(), tc.want, "%q", tc.name)
		require.Contains(t, err.Error(), "choose another")
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, ents)
	_, err = shm.CreateMemfd("a\x1bb", 4096, nil)
	require.ErrorIs(t, err, shm.ErrBadName)

	// Printable names, dot-named ones included, are fine.
	for _, name := range []string{".hidden", "zäh 日本", "say-\"hi\""} {
		seg, err := shm.Create(name, 4096, nil, shm.Dir(dir))
		require.NoError(t, err, "%q", name)
		require.NoError(t, seg.Close())
		require.True(t, shm.IsSegmentName(name))
	}
}

// TestLeftoverOfKilledCreate: a creator stopped inside Create holds its
// temporary file's lock: Leftovers reports it alive and RemoveLeftover
// refuses it (ErrBusy). Once the creator is SIGKILLed, the file stays,
// Leftovers reports its creator dead, and RemoveLeftover removes it. The
// name was never published.
func TestLeftoverOfKilledCreate(t *testing.T) {
	name := testutil.Name(t)
	cmd := testutil.StartHangInCreate(t, childEnv+"="+name)

	lefts, err := shm.Leftovers(name)
	require.NoError(t, err)
	require.Len(t, lefts, 1)
	l := lefts[0]
	require.NoError(t, l.Err)
	require.True(t, l.CreatorAlive)
	require.Equal(t, name, l.Segment)
	require.Equal(t, int64(shm.HeaderSize+8192), l.Size)
	require.True(t, strings.HasPrefix(filepath.Base(l.Path), "."+name+".creating-"), l.Path)
	seg, ok := shm.TempName(filepath.Base(l.Path))
	require.True(t, ok)
	require.Equal(t, name, seg)
	require.False(t, shm.IsSegmentName(filepath.Base(l.Path)))

	err = shm.Remove(l.Path)
	require.ErrorIs(t, err, shm.ErrBadName, "Remove leaves temporary files to RemoveLeftover")
	require.Contains(t, err.Error(), "removes it once its creator is dead")
	err = shm.RemoveLeftover(l.Path)
	require.ErrorIs(t, err, shm.ErrBusy)
	require.Contains(t, err.Error(), "its creator is still running")
	_, err = os.Stat(l.Path)
	require.NoError(t, err, "never removed while its creator lives")

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	lefts, err = shm.Leftovers(name)
	require.NoError(t, err)
	require.Len(t, lefts, 1)
	require.False(t, lefts[0].CreatorAlive)
	require.NoError(t, lefts[0].Err)
	_, err = os.Stat("/dev/shm/" + name)
	require.ErrorIs(t, err, os.ErrNotExist, "never published")

	require.NoError(t, shm.RemoveLeftover(l.Path))
	_, err = os.Stat(l.Path)
	require.ErrorIs(t, err, os.ErrNotExist)
	lefts, err = shm.Leftovers(name)
	require.NoError(t, err)
	require.Empty(t, lefts)
}

// TestRemoveLeftoverRefusals: RemoveLeftover removes only files named as
// Create's temporary files, never follows a symbolic link, and removing
// the temporary name of a creator killed between link and unlink leaves
// the published segment intact.
func TestRemoveLeftoverRefusals(t *testing.T) {
	dir := t.TempDir()
	seg := create(t, filepath.Join(dir, "ring"), 4096)
	err := shm.RemoveLeftover(seg.Path())
	require.ErrorIs(t, err, shm.ErrBadName)

	link := filepath.Join(dir, ".ring.creating-00112233445566ff")
	require.NoError(t, os.Symlink(seg.Path(), link))
	require.ErrorIs(t, shm.RemoveLeftover(link), shm.ErrSymlink)
	require.NoError(t, os.Remove(link))

	// A second name of the published segment: removing it is safe.
	require.NoError(t, os.Link(seg.Path(), link))
	lefts, err := shm.Leftovers("ring", shm.Dir(dir))
	require.NoError(t, err)
	require.Len(t, lefts, 1)
	require.False(t, lefts[0].CreatorAlive, "the creator released its lock when it published")
	require.NoError(t, shm.RemoveLeftover(link))
	again, err := shm.Open(seg.Path())
	require.NoError(t, err)
	require.NoError(t, again.Close())

	for _, n := range []string{".ring.creating-0011", "ring.creating-0011223344556677", ".ring.creating-00112233445566XY", ".ring.creating-00112233445566778"} {
		_, ok := shm.TempName(n)
		require.False(t, ok, n)
	}
}
