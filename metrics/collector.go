package metrics

import (
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shmring/shmring/internal/printable"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// Collector is a prometheus.Collector that reads rings' counters from their
// segments at scrape time: it costs the producer and consumer nothing.
// Every metric carries a "ring" label with the name given to NewCollector
// (quoted, as a Go string literal, if it is not safe to print).
// It is safe for concurrent use; the rings must stay open while it is
// registered.
type Collector struct {
	rings map[string]*ipc.Ring
}

// NewCollector returns a collector for the given rings, keyed by the value
// of their "ring" label.
func NewCollector(rings map[string]*ipc.Ring) *Collector {
	c := &Collector{rings: make(map[string]*ipc.Ring, len(rings))}
	for k, v := range rings {
		c.rings[k] = v
	}
	return c
}

type metric struct {
	desc  *prometheus.Desc
	vtype prometheus.ValueType
	value func(ipc.Stats) float64
}

func newMetric(name, help string, vtype prometheus.ValueType, value func(ipc.Stats) float64) metric {
	return metric{prometheus.NewDesc("shmring_"+name, help, []string{"ring"}, nil), vtype, value}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var metrics = []metric{
	newMetric("produced_messages_total", "Messages written into the ring.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.MsgsIn) }),
	newMetric("produced_bytes_total", "Payload bytes written into the ring.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.BytesIn) }),
	newMetric("consumed_messages_total", "Messages read from the ring.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.MsgsOut) }),
	newMetric("consumed_bytes_total", "Payload bytes read from the ring.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.BytesOut) }),
	newMetric("full_events_total", "Writes that found the ring full (once per write call).", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.FullEvents) }),
	newMetric("dropped_messages_total", "Messages dropped because the ring was full.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.Drops) }),
	newMetric("producer_spins_total", "Wait iterations of producers waiting for room.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.Spins) }),
	newMetric("depth_bytes", "Bytes published and not yet released (records, headers and padding).", prometheus.GaugeValue, func(s ipc.Stats) float64 { return float64(s.Depth) }),
	newMetric("capacity_bytes", "Size of the ring's data area.", prometheus.GaugeValue, func(s ipc.Stats) float64 { return float64(s.Capacity) }),
	newMetric("high_watermark_bytes", "Largest depth observed since creation or the last reset (ringctl reset, ops.ResetHighWater).", prometheus.GaugeValue, func(s ipc.Stats) float64 { return float64(s.HighWater) }),
	newMetric("overflowed_messages_total", "Messages handed to an overflow route because the ring was full.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.Overflowed) }),
	newMetric("duplicate_messages_total", "Records discarded by the consumer as already delivered (rings with sequences).", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.Duplicates) }),
	newMetric("lost_messages_total", "Reservations of dead producers skipped by the consumer.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.Lost) }),
	newMetric("producer_yields_total", "sched_yield calls of producers waiting for room.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.Yields) }),
	newMetric("consumer_spins_total", "Busy-wait iterations of the consumer waiting for data.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.ConsumerSpins) }),
	newMetric("consumer_yields_total", "sched_yield calls of the consumer waiting for data.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.ConsumerYields) }),
	newMetric("consumer_heartbeat_age_seconds", "Seconds since the consumer's last heartbeat (it beats every second while attached).", prometheus.GaugeValue, func(s ipc.Stats) float64 {
		if s.ConsumerHeartbeat == 0 {
			return math.Inf(1)
		}
		return time.Since(time.Unix(0, s.ConsumerHeartbeat)).Seconds()
	}),
	newMetric("producer_parks_total", "Times a producer slept waiting for room.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.ProducerParks) }),
	newMetric("consumer_parks_total", "Times the consumer slept waiting for data.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.ConsumerParks) }),
	newMetric("producer_wakeups_total", "Wake system calls made for sleeping producers.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.ProducerWakeups) }),
	newMetric("consumer_wakeups_total", "Wake system calls made for the sleeping consumer.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.ConsumerWakeups) }),
	newMetric("pressure_changes_total", "Times the pressure level changed.", prometheus.CounterValue, func(s ipc.Stats) float64 { return float64(s.PressureChanges) }),
	newMetric("window_bytes", "Bytes producers may fill (the capacity when no window is set).", prometheus.GaugeValue, func(s ipc.Stats) float64 {
		if s.Window == 0 || s.Window > s.Capacity {
			return float64(s.Capacity)
		}
		return float64(s.Window)
	}),
	newMetric("producer_attached", "1 if a live process holds the producer role.", prometheus.GaugeValue, func(s ipc.Stats) float64 { return b2f(s.ProducerAttached) }),
	newMetric("consumer_attached", "1 if a live process holds the consumer role.", prometheus.GaugeValue, func(s ipc.Stats) float64 { return b2f(s.ConsumerAttached) }),
}

var (
	pressureDesc = prometheus.NewDesc("shmring_pressure",
		"1 while the ring's pressure is raised for the cause: depth (past the high level) or delay (queueing delay above the target); else 0.", []string{"ring", "cause"}, nil)
	infoDesc = prometheus.NewDesc("shmring_ring_info",
		"Always 1; the labels describe the ring: kind, producer slots (mpsc), largest message, and its creation options.",
		[]string{"ring", "kind", "slots", "max_message_bytes", "timestamps", "drop_oldest", "sequences", "header_commit"}, nil)
	slotMessagesDesc = prometheus.NewDesc("shmring_slot_produced_messages_total",
		"MPSC: messages written through the producer slot, across its holders.", []string{"ring", "slot"}, nil)
	slotDropsDesc = prometheus.NewDesc("shmring_slot_dropped_messages_total",
		"MPSC: messages the producer slot's holders dropped.", []string{"ring", "slot"}, nil)
	slotLostDesc = prometheus.NewDesc("shmring_slot_lost_messages_total",
		"MPSC: reservations of the slot's dead holders that the consumer skipped.", []string{"ring", "slot"}, nil)
	slotAliveDesc = prometheus.NewDesc("shmring_slot_alive",
		"MPSC: 1 while a live process holds the producer slot.", []string{"ring", "slot"}, nil)
	// The routing counters of the segment (ops.Routing): every router's,
	// summed. Not shmring_route_*: those are RouterCollector's, one
	// router's own counts, labelled router and ring.
	routedDesc = prometheus.NewDesc("shmring_routed_messages_total",
		"Messages routers wrote to the ring, summed over every router routing into it (from the segment; up to one router sample interval behind).", []string{"ring"}, nil)
	spilledDesc = prometheus.NewDesc("shmring_spilled_messages_total",
		"By-key routing with spill-over: messages keyed to the ring that routers sent to another ring, summed over every router (from the segment).", []string{"ring"}, nil)
	skippedDesc = prometheus.NewDesc("shmring_unhealthy_skips_total",
		"Times a message passed the ring over because it was out of a router's rotation (consumer dead or stalled), summed over every router (from the segment).", []string{"ring"}, nil)
	// extraDescs are the descriptors beyond metrics and delayDesc.
	extraDescs = []*prometheus.Desc{pressureDesc, infoDesc, slotMessagesDesc, slotDropsDesc, slotLostDesc, slotAliveDesc,
		routedDesc, spilledDesc, skippedDesc}
)

var delayDesc = prometheus.NewDesc("shmring_queue_delay_seconds",
	"Time records waited in the ring between commit and delivery (rings created with timestamps).", []string{"ring"}, nil)

// Describe sends the descriptors of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics {
		ch <- m.desc
	}
	ch <- delayDesc
	for _, d := range extraDescs {
		ch <- d
	}
	describeBridges(ch)
}

// delayHistogram turns the segment's power-of-two buckets into a
// Prometheus histogram: bucket k holds delays below 2^(k+1) ns.
func delayHistogram(st ipc.Stats, name string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(st.DelayBuckets))
	var cum uint64
	for k, n := range st.DelayBuckets[:len(st.DelayBuckets)-1] {
		cum += n
		buckets[float64(uint64(1)<<(k+1))/1e9] = cum
	}
	return prometheus.MustNewConstHistogram(delayDesc, st.DelayCount, float64(st.DelaySum)/1e9, buckets, name)
}

// Collect reads each ring's counters and its bridge blocks (metrics
// shmring_bridge_*, for a ring a NATS bridge has run on) and sends them.
// A ring that can no longer be read (closed) is skipped.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for name, r := range c.rings {
		st, err := r.Stats()
		if err != nil {
			continue
		}
		rc, err := ops.Routing(r)
		if err != nil {
			continue
		}
		bs, _ := ops.Bridges(r) // none if they cannot be read: the ring's own metrics still go
		emit(ch, name, st, rc, bs)
	}
}

// emit sends one ring's metrics. A name that is not safe to print (a
// control character, invalid UTF-8, which Prometheus refuses in a label)
// is labelled quoted instead, so that a file name chosen by another process
// can neither break the scrape nor write escapes to whoever reads it.
func emit(ch chan<- prometheus.Metric, name string, st ipc.Stats, rc ops.RouteCounters, bridges []ops.Bridge) {
	name = printable.Label(name)
	emitBridges(ch, name, bridges)
	for _, m := range metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.vtype, m.value(st), name)
	}
	if st.Timestamps {
		ch <- delayHistogram(st, name)
	}
	ch <- prometheus.MustNewConstMetric(pressureDesc, prometheus.GaugeValue, b2f(st.Pressure.Depth), name, "depth")
	ch <- prometheus.MustNewConstMetric(pressureDesc, prometheus.GaugeValue, b2f(st.Pressure.Delay), name, "delay")
	tf := strconv.FormatBool
	ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, name, string(st.Kind), strconv.Itoa(st.Slots),
		strconv.FormatUint(st.MaxMessage, 10), tf(st.Timestamps), tf(st.DropOldest), tf(st.Sequences), tf(st.HeaderCommit))
	ch <- prometheus.MustNewConstMetric(routedDesc, prometheus.CounterValue, float64(rc.Routed), name)
	ch <- prometheus.MustNewConstMetric(spilledDesc, prometheus.CounterValue, float64(rc.Spilled), name)
	ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(rc.Skipped), name)
	for _, p := range st.Producers {
		slot := strconv.Itoa(p.Slot)
		ch <- prometheus.MustNewConstMetric(slotMessagesDesc, prometheus.CounterValue, float64(p.MsgsIn), name, slot)
		ch <- prometheus.MustNewConstMetric(slotDropsDesc, prometheus.CounterValue, float64(p.Drops), name, slot)
		ch <- prometheus.MustNewConstMetric(slotLostDesc, prometheus.CounterValue, float64(p.Lost), name, slot)
		ch <- prometheus.MustNewConstMetric(slotAliveDesc, prometheus.GaugeValue, b2f(p.Alive), name, slot)
	}
}
