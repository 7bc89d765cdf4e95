package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// TestPeekPositionsAndReservation: peek prints each message's position
// (@N), and an MPSC walk that reaches a claim not yet committed ends with
// that reservation, said as such, in text and in JSON.
func TestPeekPositionsAndReservation(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, ringctl(t, "", "create", "M", "--kind", "mpsc", "--size", "4KiB", "--dir", dir).code)
	require.Zero(t, ringctl(t, "one\ntwo\n", "send", "M", "--dir", dir).code)

	r := ringctl(t, "", "peek", "M", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "@0 slot 0, 3 bytes: \"one\"\n")
	require.Contains(t, r.stdout, "@16 slot 0, 3 bytes: \"two\"\n")

	ring, err := ipc.Open(filepath.Join(dir, "M"))
	require.NoError(t, err)
	defer ring.Close()
	p, err := ring.Producer(&ipc.ProducerConfig{ID: 2})
	require.NoError(t, err)
	defer p.Close()
	b, err := p.Claim(context.Background(), 5)
	require.NoError(t, err)
	copy(b, "later")

	r = ringctl(t, "", "peek", "M", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "@32 slot 1: uncommitted reservation (the walk stops here)\n")
	r = ringctl(t, "", "peek", "M", "--json", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	var peeked []peekRecord
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &peeked))
	require.Len(t, peeked, 3)
	require.Equal(t, []uint64{0, 16, 32}, []uint64{peeked[0].Position, peeked[1].Position, peeked[2].Position})
	require.False(t, peeked[0].Pending || peeked[1].Pending)
	require.True(t, peeked[2].Pending)
	require.Equal(t, 1, peeked[2].Slot)

	require.NoError(t, p.Commit(5))
	r = ringctl(t, "", "peek", "M", "--dir", dir)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "@32 slot 1, 5 bytes: \"later\"\n")
}
