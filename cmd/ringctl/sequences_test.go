package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// TestCreateSequences (issue 12): create --sequences makes a ring whose
// records carry sequences, and stat shows the sequence words and the
// duplicates the consumer discarded, as text and as JSON.
func TestCreateSequences(t *testing.T) {
	name := newRingName(t)
	r := ringctl(t, "", "create", name, "--size", "4KiB", "--sequences")
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "created /dev/shm/"+name+": spsc, capacity 4 KiB, max message 512 B, mode 0600, sequences\n", r.stdout)

	ring, err := ipc.Open(name)
	require.NoError(t, err)
	defer ring.Close()
	created, err := ring.Stats()
	require.NoError(t, err)
	require.True(t, created.Sequences)
	p, err := ring.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	c, err := ring.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	require.NoError(t, p.WriteSeq(ctx, 1, []byte("a")))
	require.NoError(t, p.WriteSeq(ctx, 2, []byte("b")))
	var got []string
	n, err := c.Read(ctx, 10, func(m []byte) { got = append(got, string(m)) })
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, p.WriteSeq(ctx, 2, []byte("b"))) // a resend: discarded
	require.NoError(t, p.WriteSeq(ctx, 3, []byte("c")))
	n, err = c.Read(ctx, 10, func(m []byte) { got = append(got, string(m)) })
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{"a", "b", "c"}, got)

	r = ringctl(t, "", "stat", name)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "  depth           0 B (0.0%), 0 messages\n") // the duplicate is not pending
	require.Contains(t, r.stdout, "  records      sequences\n")
	require.Contains(t, r.stdout, "  sequences      1 duplicates discarded; last begun 3, committed 3, delivered 3\n")

	r = ringctl(t, "", "stat", name, "--json")
	require.Zero(t, r.code, r.stderr)
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Equal(t, true, rep["sequences"])
	require.EqualValues(t, 1, rep["duplicates"])
	require.EqualValues(t, 3, rep["last_sequence_committed"])
	require.EqualValues(t, 3, rep["last_sequence_begun"])
	require.EqualValues(t, 3, rep["last_sequence_delivered"])
}

// TestStatSequencesMPSC: stat's producer table shows each slot's sequence
// words in a ring with sequences.
func TestStatSequencesMPSC(t *testing.T) {
	name := newRingName(t)
	r := ringctl(t, "", "create", name, "--size", "4KiB", "--kind", "mpsc", "--producers", "2", "--sequences")
	require.Zero(t, r.code, r.stderr)
	require.Equal(t, "created /dev/shm/"+name+": mpsc, 2 producer slots, capacity 4 KiB, max message 512 B, mode 0600, sequences\n", r.stdout)
	ring, err := ipc.Open(name)
	require.NoError(t, err)
	defer ring.Close()
	p, err := ring.Producer(nil)
	require.NoError(t, err)
	defer p.Close()
	c, err := ring.Consumer(nil)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	require.NoError(t, p.WriteSeq(ctx, 5, []byte("a")))
	n, err := c.Read(ctx, 10, func([]byte) {})
	require.NoError(t, err)
	require.Equal(t, 1, n)

	r = ringctl(t, "", "stat", name, "--json")
	require.Zero(t, r.code, r.stderr)
	var rep statReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Len(t, rep.Producers, 1)
	require.EqualValues(t, 5, rep.Producers[0].LastSeq)
	require.EqualValues(t, 5, rep.Producers[0].DelivSeq)
	r = ringctl(t, "", "stat", name)
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "seq begun  seq delivered")
	require.Contains(t, r.stdout, "  sequences      0 duplicates discarded (per producer below)\n")
}
