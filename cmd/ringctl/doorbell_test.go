package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// TestDoorbellCreateStatLs: create --doorbell sets flag bit 4; stat shows
// it and line 15 (the id a set stored, its wakes, its failures), in text
// and JSON; ls lists the ring and not a doorbell file beside it; a ring
// may not be named like a doorbell.
func TestDoorbellCreateStatLs(t *testing.T) {
	dir := t.TempDir()
	r := ringctl(t, "", "create", "d", "--size", "4KiB", "--doorbell", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "doorbell")
	d, err := shm.CreateDoorbell(dir, func([]byte, uint64) error { return nil })
	require.NoError(t, err)
	defer func() { require.NoError(t, d.Close()) }()
	path := filepath.Join(dir, "d")
	testutil.SetRingWord(t, path, 1920, d.ID())
	testutil.SetRingWord(t, path, 1928, 7)
	testutil.SetRingWord(t, path, 1936, 2)

	r = ringctl(t, "", "stat", "d", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "doorbell")
	require.Contains(t, r.stdout, "wakes 7, failures 2")
	r = ringctl(t, "", "stat", "--json", "d", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	var js struct {
		Doorbell         bool   `json:"doorbell"`
		DoorbellID       uint64 `json:"doorbell_id"`
		DoorbellWakes    uint64 `json:"doorbell_wakes"`
		DoorbellFailures uint64 `json:"doorbell_failures"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &js))
	require.True(t, js.Doorbell)
	require.Equal(t, d.ID(), js.DoorbellID)
	require.Equal(t, uint64(7), js.DoorbellWakes)
	require.Equal(t, uint64(2), js.DoorbellFailures)

	r = ringctl(t, "", "ls", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "d ")
	require.NotContains(t, r.stdout, shm.DoorbellPrefix, "a doorbell is not listed as a ring")
	_, err = os.Stat(d.Path())
	require.NoError(t, err)

	r = ringctl(t, "", "create", shm.DoorbellName(42), "--size", "4KiB", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "doorbell")
}

// TestDoctorDoorbell: doctor reports the doorbell line 15 names: a live
// set's is fine, a dead set's (its lock free) is a problem that --repair
// removes.
func TestDoctorDoorbell(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "d", "--size", "4KiB", "--doorbell", "--dir", dir).code)
	path := filepath.Join(dir, "d")
	live, err := shm.CreateDoorbell(dir, func([]byte, uint64) error { return nil })
	require.NoError(t, err)
	testutil.SetRingWord(t, path, 1920, live.ID())
	r := ringctl(t, "", "doctor", "d", "--dir", dir)
	require.Zero(t, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "its wait set is running")
	require.NoError(t, live.Close())

	dead := filepath.Join(dir, shm.DoorbellName(77))
	require.NoError(t, os.WriteFile(dead, make([]byte, shm.DoorbellFileSize), 0o600))
	testutil.SetRingWord(t, path, 1920, 77)
	r = ringctl(t, "", "doctor", "d", "--dir", dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "dead wait set's")
	r = ringctl(t, "", "doctor", "--repair", "d", "--dir", dir)
	require.Zero(t, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "a dead wait set's doorbell")
	require.NoFileExists(t, dead)
}

// TestRecvSetGlobSkipsDoorbells: a --set glob does not take a doorbell
// file for a ring.
func TestRecvSetGlobSkipsDoorbells(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "shmring-app", "--size", "4KiB", "--doorbell", "--dir", dir).code)
	require.NoError(t, os.WriteFile(filepath.Join(dir, shm.DoorbellName(5)), make([]byte, shm.DoorbellFileSize), 0o600))
	names, err := setNames(location{dir: dir}, "shmring-*")
	require.NoError(t, err)
	require.Equal(t, []string{"shmring-app"}, names)
}

// TestStatDoorbellFile (H36, the outsider's finding 4): stat says what the
// doorbell file line 15 names is, as doctor does, instead of calling any id
// "a wait set's": a live set's file (locked), with no consumer of this ring
// (not its set: a stale or forged id); a dead set's (the lock free); no
// such file. In text and in JSON (doorbell_file).
func TestStatDoorbellFile(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "d", "--size", "4KiB", "--doorbell", "--dir", dir).code)
	path := filepath.Join(dir, "d")
	d, err := shm.CreateDoorbell(dir, func([]byte, uint64) error { return nil })
	require.NoError(t, err)
	defer func() { require.NoError(t, d.Close()) }()
	dead := filepath.Join(dir, shm.DoorbellName(0x77))
	require.NoError(t, os.WriteFile(dead, make([]byte, shm.DoorbellFileSize), 0o600))
	for _, c := range []struct {
		id          uint64
		state, text string
	}{
		{d.ID(), "live", "no consumer holds this ring's role"},
		{0x77, "dead", "dead wait set"},
		{0x99, "missing", "no such doorbell file"},
	} {
		testutil.SetRingWord(t, path, 1920, c.id)
		r := ringctl(t, "", "stat", "d", "--dir", dir)
		require.Zero(t, r.code, r.stderr)
		require.Contains(t, r.stdout, fmt.Sprintf("%016x (", c.id))
		require.Contains(t, r.stdout, c.text)
		require.NotContains(t, r.stdout, "(a wait set's)")
		r = ringctl(t, "", "stat", "--json", "d", "--dir", dir)
		require.Zero(t, r.code, r.stderr)
		var js struct {
			DoorbellFile string `json:"doorbell_file"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &js))
		require.Equal(t, c.state, js.DoorbellFile)
	}
}
