package metrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/metrics"
	"github.com/shmring/shmring/waitset"
	"github.com/stretchr/testify/require"
)

// TestWaitSetCollector: a set's per-member and set-wide counters, under
// the member label (the ring's name) and the constant labels given.
func TestWaitSetCollector(t *testing.T) {
	a, b := newRing(t, ipc.Config{}), newRing(t, ipc.Config{})
	s, err := waitset.New(&waitset.Config{Budget: 2})
	require.NoError(t, err)
	defer s.Close()
	ma, err := s.Join(a)
	require.NoError(t, err)
	mb, err := s.Join(b)
	require.NoError(t, err)
	for r, n := range map[*ipc.Ring]int{a: 3, b: 1} {
		p, err := r.Producer(nil)
		require.NoError(t, err)
		for range n {
			require.NoError(t, p.TryWrite([]byte("msg")))
		}
		require.NoError(t, p.Close())
	}
	// a: 2 (its budget spent), b: 1; then a: 1.
	for got := 0; got < 4; {
		n, err := s.Read(context.Background(), 100, func(*waitset.Member, []byte) {})
		require.NoError(t, err)
		got += n
	}
	col := metrics.NewWaitSetCollector(s, map[string]string{"set": "ingest"})
	an, bn := ma.Name(), mb.Name()
	require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(`
# HELP shmring_waitset_delivered_messages_total Messages the set delivered from the member ring.
# TYPE shmring_waitset_delivered_messages_total counter
shmring_waitset_delivered_messages_total{member="`+an+`",set="ingest"} 3
shmring_waitset_delivered_messages_total{member="`+bn+`",set="ingest"} 1
# HELP shmring_waitset_delivered_bytes_total Payload bytes the set delivered from the member ring.
# TYPE shmring_waitset_delivered_bytes_total counter
shmring_waitset_delivered_bytes_total{member="`+an+`",set="ingest"} 9
shmring_waitset_delivered_bytes_total{member="`+bn+`",set="ingest"} 3
# HELP shmring_waitset_turns_total Turns of the set's round robin that delivered at least one message of the member ring.
# TYPE shmring_waitset_turns_total counter
shmring_waitset_turns_total{member="`+an+`",set="ingest"} 2
shmring_waitset_turns_total{member="`+bn+`",set="ingest"} 1
# HELP shmring_waitset_budget_exhausted_total Turns that delivered the member ring's whole budget (ended at the budget, not at an empty ring).
# TYPE shmring_waitset_budget_exhausted_total counter
shmring_waitset_budget_exhausted_total{member="`+an+`",set="ingest"} 1
shmring_waitset_budget_exhausted_total{member="`+bn+`",set="ingest"} 0
# HELP shmring_waitset_member_on_doorbell 1 if the set sleeps on a doorbell for the member ring (its producers ring it), 0 if on the ring's own futex word.
# TYPE shmring_waitset_member_on_doorbell gauge
shmring_waitset_member_on_doorbell{member="`+an+`",set="ingest"} 0
shmring_waitset_member_on_doorbell{member="`+bn+`",set="ingest"} 0
# HELP shmring_waitset_member_doorbell_restores_total Sleeps that found the member ring's line-15 doorbell id changed by someone else and stored the set's own again.
# TYPE shmring_waitset_member_doorbell_restores_total counter
shmring_waitset_member_doorbell_restores_total{member="`+an+`",set="ingest"} 0
shmring_waitset_member_doorbell_restores_total{member="`+bn+`",set="ingest"} 0
# HELP shmring_waitset_sleeps_total Times the set slept on its members.
# TYPE shmring_waitset_sleeps_total counter
shmring_waitset_sleeps_total{set="ingest"} 0
# HELP shmring_waitset_dropped_members_total Member rings the set dropped because they were closed or damaged.
# TYPE shmring_waitset_dropped_members_total counter
shmring_waitset_dropped_members_total{set="ingest"} 0
# HELP shmring_waitset_members Member rings in the set now.
# TYPE shmring_waitset_members gauge
shmring_waitset_members{set="ingest"} 2
`), "shmring_waitset_delivered_messages_total", "shmring_waitset_delivered_bytes_total", "shmring_waitset_turns_total",
		"shmring_waitset_budget_exhausted_total", "shmring_waitset_member_on_doorbell", "shmring_waitset_member_doorbell_restores_total", "shmring_waitset_sleeps_total", "shmring_waitset_dropped_members_total", "shmring_waitset_members"))
	require.Equal(t, 2*9+8, testutil.CollectAndCount(col), "9 metrics per member, 8 of the set")
	problems, err := testutil.CollectAndLint(col)
	require.NoError(t, err)
	require.Empty(t, problems)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(col))
	_, err = reg.Gather()
	require.NoError(t, err)

	// After Close: the set-wide counters, no member.
	require.NoError(t, s.Close())
	require.Equal(t, 8, testutil.CollectAndCount(col))
}
