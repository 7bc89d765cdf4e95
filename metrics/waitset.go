package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shmring/shmring/internal/printable"
	"github.com/shmring/shmring/waitset"
)

// WaitSetCollector is a prometheus.Collector for a waitset.Set's counters
// (waitset.Set.Stats), which live in the consuming process, not in any
// segment: each member's delivered messages and bytes, turns, spent
// budgets, wake-ups and peer-dead reports, under a "member" label with the
// ring's name (waitset.Member.Name; the ring's path instead for two
// members of one name), and the set's sleeps, wake-ups, spurious wake-ups,
// timed-out sleeps, peer-dead reports, dropped members and member count.
// Every metric also carries the constant labels given to
// NewWaitSetCollector (to tell several sets apart). It is safe for
// concurrent use; a closed set reports its set-wide counters and no
// member.
type WaitSetCollector struct {
	set   *waitset.Set
	descs waitSetDescs
}

type waitSetDescs struct {
	messages, bytes, turns, exhausted, memberWakeups, memberPeerDead *prometheus.Desc
	sleeps, wakeups, spurious, timeouts, peerDead, dropped, members  *prometheus.Desc
	onDoorbell, doorbellWakeups, restores, missed                    *prometheus.Desc
}

// NewWaitSetCollector returns a collector for set; labels (nil for none)
// are constant labels added to every metric, e.g. {"set": "ingest"}. A
// label named "member" is not allowed (the per-member metrics have it):
// registering the collector then fails.
func NewWaitSetCollector(set *waitset.Set, labels map[string]string) *WaitSetCollector {
	cl := prometheus.Labels{}
	for k, v := range labels {
		cl[k] = printable.Label(v)
	}
	member := []string{"member"}
	d := func(name, help string, vars []string) *prometheus.Desc {
		return prometheus.NewDesc("shmring_waitset_"+name, help, vars, cl)
	}
	return &WaitSetCollector{set: set, descs: waitSetDescs{
		messages:        d("delivered_messages_total", "Messages the set delivered from the member ring.", member),
		bytes:           d("delivered_bytes_total", "Payload bytes the set delivered from the member ring.", member),
		turns:           d("turns_total", "Turns of the set's round robin that delivered at least one message of the member ring.", member),
		exhausted:       d("budget_exhausted_total", "Turns that delivered the member ring's whole budget (ended at the budget, not at an empty ring).", member),
		memberWakeups:   d("member_wakeups_total", "Sleeps of the set that the member ring's producer ended.", member),
		memberPeerDead:  d("member_peer_dead_total", "Times the member ring was reported with no producer.", member),
		sleeps:          d("sleeps_total", "Times the set slept on its members.", nil),
		wakeups:         d("wakeups_total", "Sleeps of the set that a member ring's producer ended.", nil),
		spurious:        d("spurious_wakeups_total", "Sleeps of the set that ended early and found nothing to do.", nil),
		timeouts:        d("sleep_timeouts_total", "Sleeps of the set that ran their whole time slice.", nil),
		peerDead:        d("peer_dead_reports_total", "Reports of a member ring with no producer, over every member present or gone.", nil),
		dropped:         d("dropped_members_total", "Member rings the set dropped because they were closed or damaged.", nil),
		members:         d("members", "Member rings in the set now.", nil),
		onDoorbell:      d("member_on_doorbell", "1 if the set sleeps on a doorbell for the member ring (its producers ring it), 0 if on the ring's own futex word.", member),
		doorbellWakeups: d("doorbell_wakeups_total", "Sleeps of the set that a doorbell ended (counted in wakeups_total too).", nil),
		restores:        d("member_doorbell_restores_total", "Sleeps that found the member ring's line-15 doorbell id changed by someone else and stored the set's own again.", member),
		missed:          d("member_missed_wakeups_total", "Sleeps that ran their whole slice and then found a wake-up of the member ring gone astray (a doorbell member is then moved to its own word).", member),
	}}
}

// Describe sends the descriptors of every metric.
func (c *WaitSetCollector) Describe(ch chan<- *prometheus.Desc) {
	d := &c.descs
	for _, x := range []*prometheus.Desc{d.messages, d.bytes, d.turns, d.exhausted, d.memberWakeups, d.memberPeerDead,
		d.sleeps, d.wakeups, d.spurious, d.timeouts, d.peerDead, d.dropped, d.members, d.onDoorbell, d.doorbellWakeups, d.restores, d.missed} {
		ch <- x
	}
}

// Collect reads the set's counters (waitset.Set.Stats) and sends them.
func (c *WaitSetCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.set.Stats() // the set-wide counters; the members' below, with their labels
	d := &c.descs
	counter := func(desc *prometheus.Desc, v uint64, member ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), member...)
	}
	members := c.set.Members()
	for i, l := range memberLabels(members) {
		m := members[i].Stats()
		counter(d.messages, m.Messages, l)
		counter(d.bytes, m.Bytes, l)
		counter(d.turns, m.Turns, l)
		counter(d.exhausted, m.Exhausted, l)
		counter(d.memberWakeups, m.Wakeups, l)
		counter(d.memberPeerDead, m.PeerDead, l)
		counter(d.restores, m.DoorbellRestores, l)
		counter(d.missed, m.MissedWakeups, l)
		on := 0.0
		if m.Doorbell != 0 {
			on = 1
		}
		ch <- prometheus.MustNewConstMetric(d.onDoorbell, prometheus.GaugeValue, on, l)
	}
	counter(d.doorbellWakeups, st.DoorbellWakeups)
	counter(d.sleeps, st.Sleeps)
	counter(d.wakeups, st.Wakeups)
	counter(d.spurious, st.Spurious)
	counter(d.timeouts, st.Timeouts)
	counter(d.peerDead, st.PeerDead)
	counter(d.dropped, st.Dropped)
	ch <- prometheus.MustNewConstMetric(d.members, prometheus.GaugeValue, float64(len(members)))
}

// memberLabels returns each member's "member" label: its name, or its
// ring's path for a name that two members have.
func memberLabels(members []*waitset.Member) []string {
	count := map[string]int{}
	for _, m := range members {
		count[m.Name()]++
	}
	out := make([]string, len(members))
	for i, m := range members {
		l := m.Name()
		if count[l] > 1 {
			l = m.Ring().Path()
		}
		out[i] = printable.Label(l)
	}
	return out
}
