package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/stretchr/testify/require"
)

// startHangInCreate starts a child that stops inside Create for path
// (testutil.HangInCreate) and returns once it is there.
func startHangInCreate(t *testing.T, path string) *exec.Cmd {
	return testutil.StartHangInCreate(t, "RINGCTL_TEST_HANG_IN_CREATE="+path)
}

// tempFiles lists the temporary files of creates of ring in dir.
func tempFiles(t *testing.T, dir, ring string) []string {
	m, err := filepath.Glob(filepath.Join(dir, "."+ring+".creating-*"))
	require.NoError(t, err)
	return m
}

// TestUnprintableNames: create refuses a name with a control or format
// character, saying which; a ring whose file name is unprintable anyway
// (renamed by another tool) is shown escaped by every command that prints
// names, never raw, and exactly in JSON.
func TestUnprintableNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a\x1b[2Jb", "new\nline", "\u202eexe.txt", "bad\xff"} {
		r := ringctl(t, "", "create", name, "--size", "4KiB", "--dir", dir)
		require.Equal(t, 1, r.code, "%q", name)
		require.Contains(t, r.stderr, "a name must be printable")
		require.Contains(t, r.stderr, "choose another")
		require.NotContains(t, r.stderr, name, "the error shows the name escaped")
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, ents)

	evil := "evil\x1b[2J\u202e"
	require.Zero(t, ringctl(t, "", "create", "x", "--size", "4KiB", "--dir", dir).code)
	require.NoError(t, os.Rename(filepath.Join(dir, "x"), filepath.Join(dir, evil)))
	quoted := fmt.Sprintf("%q", filepath.Join(dir, evil))
	for _, args := range [][]string{
		{"stat", evil}, {"doctor", evil}, {"watch", evil, "--once", "--interval", "1ms"},
		{"policy", evil}, {"reset", evil}, {"ls"},
	} {
		r := ringctl(t, "", append(args, "--dir", dir)...)
		require.Zero(t, r.code, "%v: %s", args, r.stderr)
		require.NotContains(t, r.stdout, "\x1b", "%v", args)
		require.NotContains(t, r.stdout, "\u202e", "%v", args)
		if args[0] == "ls" {
			require.Contains(t, r.stdout, `"evil\x1b[2J\u202e"`)
		} else {
			require.Contains(t, r.stdout, quoted, "%v", args)
		}
	}
	r := ringctl(t, "", "ls", "--json", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.NotContains(t, r.stdout, "\x1b")
	var entries []lsEntry
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &entries))
	require.Len(t, entries, 1)
	require.Equal(t, evil, entries[0].Name, "JSON carries the name exactly")
}

// TestLeftoversLsAndDoctor: a ring named with a leading dot is listed like
// any other. A create stopped mid-way (a child process inside shm.Create)
// leaves a temporary file that ls shows as being created and doctor leaves
// alone, even with --repair; once the creator is SIGKILLed, ls shows the
// leftover and the command that removes it, doctor reports it as a problem
// and doctor --repair removes it. A leftover beside a ring that exists (a
// creator killed between publishing and removing its temporary name) is
// removed without harming the ring.
func TestLeftoversLsAndDoctor(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", ".hidden", "--size", "4KiB", "--dir", dir).code)
	creator := startHangInCreate(t, filepath.Join(dir, "coming"))
	dead := startHangInCreate(t, filepath.Join(dir, "dead"))
	require.NoError(t, dead.Process.Kill())
	_ = dead.Wait()
	require.Len(t, tempFiles(t, dir, "coming"), 1)
	require.Len(t, tempFiles(t, dir, "dead"), 1)

	r := ringctl(t, "", "ls", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	lines := strings.Split(r.stdout, "\n")
	find := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line %q in:\n%s", prefix, r.stdout)
		return ""
	}
	require.Contains(t, find(".hidden "), "spsc")
	require.Contains(t, find(".coming.creating-"), "(being created: coming appears when its creator finishes)")
	require.Contains(t, find(".dead.creating-"), "(leftover of a create of dead that was killed; 'ringctl doctor dead --dir "+dir+" --repair' removes it)")

	r = ringctl(t, "", "ls", "--json", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	var entries []lsEntry
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &entries))
	require.Len(t, entries, 3)
	got := map[string]lsEntry{}
	for _, e := range entries {
		got[e.TemporaryOf+"|"+e.Kind] = e
	}
	require.Equal(t, ".hidden", got["|spsc"].Name)
	require.True(t, *got["coming|"].CreatorAlive)
	require.False(t, *got["dead|"].CreatorAlive)

	// A create in progress is left alone.
	for _, args := range [][]string{{"doctor", "coming"}, {"doctor", "coming", "--repair"}} {
		r = ringctl(t, "", append(args, "--dir", dir)...)
		require.Equal(t, 1, r.code, "%v: the ring does not exist yet", args)
		require.Contains(t, r.stdout, "being created: ")
		require.Contains(t, r.stdout, "its creator is running; left alone")
		require.Len(t, tempFiles(t, dir, "coming"), 1, "never removed while its creator lives")
	}

	// A dead creator's leftover is reported, then removed.
	r = ringctl(t, "", "doctor", "dead", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "problem: leftover of a create killed before it published the ring")
	require.Contains(t, r.stdout, "'ringctl doctor --repair' removes it")
	r = ringctl(t, "", "doctor", "dead", "--dir", dir, "--repair", "--json")
	require.Zero(t, r.code, r.stdout+r.stderr)
	var rep doctorReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.False(t, rep.Exists)
	require.Len(t, rep.Leftovers, 1)
	require.True(t, rep.Leftovers[0].Removed)
	require.Empty(t, tempFiles(t, dir, "dead"))
	r = ringctl(t, "", "doctor", "dead", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no such ring (create it first")

	// Its creator killed, the create in progress becomes a leftover.
	require.NoError(t, creator.Process.Kill())
	_ = creator.Wait()
	r = ringctl(t, "", "doctor", "coming", "--dir", dir, "--repair")
	require.Zero(t, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "repaired: removed ")
	require.Empty(t, tempFiles(t, dir, "coming"))

	// Killed between publishing and removing the temporary name: both
	// names are the ring; removing the temporary one leaves the ring.
	require.NoError(t, os.Link(filepath.Join(dir, ".hidden"), filepath.Join(dir, "..hidden.creating-0123456789abcdef")))
	r = ringctl(t, "", "doctor", ".hidden", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "problem: leftover of a create")
	r = ringctl(t, "", "doctor", ".hidden", "--dir", dir, "--repair")
	require.Zero(t, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "repaired: removed ")
	require.Empty(t, tempFiles(t, dir, ".hidden"))
	r = ringctl(t, "", "doctor", ".hidden", "--dir", dir)
	require.Zero(t, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "healthy")
}
