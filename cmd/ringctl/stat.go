package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/shmring/shmring/internal/proc"
	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/shm"
)

// statReport is what stat prints; its JSON names are a contract for scripts.
type statReport struct {
	Path       string    `json:"path"`
	Kind       string    `json:"kind"`
	Capacity   uint64    `json:"capacity_bytes"`
	MaxMsg     uint64    `json:"max_message_bytes"`
	FileSize   int64     `json:"file_bytes"`
	Mode       string    `json:"mode"`
	OwnerUID   uint32    `json:"owner_uid"`
	Created    time.Time `json:"created"`
	CreatorPID uint32    `json:"creator_pid"`

	ProducerPos uint64  `json:"producer_position"`
	ConsumerPos uint64  `json:"consumer_position"`
	Depth       uint64  `json:"depth_bytes"`
	DepthPct    float64 `json:"depth_percent"`
	HighWater   uint64  `json:"high_watermark_bytes"`

	MsgsIn   uint64 `json:"messages_in"`
	BytesIn  uint64 `json:"bytes_in"`
	MsgsOut  uint64 `json:"messages_out"`
	BytesOut uint64 `json:"bytes_out"`
	Pending  uint64 `json:"messages_pending"`

	FullEvents uint64 `json:"full_events"`
	Drops      uint64 `json:"drops"`
	Spins      uint64 `json:"spins"`
	Lost       uint64 `json:"lost"`
	LostBytes  uint64 `json:"lost_bytes"`

	Yields          uint64  `json:"yields"`
	ConsumerSpins   uint64  `json:"consumer_spins"`
	ConsumerYields  uint64  `json:"consumer_yields"`
	ConsumerBeatAge float64 `json:"consumer_heartbeat_age_seconds"`
	ConsumerParks   uint64  `json:"consumer_parks"`
	ConsumerWakeups uint64  `json:"consumer_wakeups"`
	ProducerParks   uint64  `json:"producer_parks"`
	ProducerWakeups uint64  `json:"producer_wakeups"`
	ProducerPolicy  string  `json:"producer_policy_override"`
	ConsumerPolicy  string  `json:"consumer_policy_override"`
	Overflowed      uint64  `json:"overflowed"`
	Timestamps      bool    `json:"timestamps"`
	Sequences       bool    `json:"sequences"`
	// Sequence words (rings with sequences): duplicates counts records the
	// consumer discarded as already delivered; the last_sequence_* fields
	// are the SPSC producer's words (MPSC: per producer slot).
	Duplicates       uint64 `json:"duplicates"`
	LastSeqCommitted uint64 `json:"last_sequence_committed"`
	LastSeqBegun     uint64 `json:"last_sequence_begun"`
	LastSeqDelivered uint64 `json:"last_sequence_delivered"`
	DropOldest       bool   `json:"drop_oldest"`
	HeaderCommit     bool   `json:"header_commit"`
	Doorbell         bool   `json:"doorbell"`
	DoorbellID       uint64 `json:"doorbell_id"`
	DoorbellWakes    uint64 `json:"doorbell_wakes"`
	DoorbellFailures uint64 `json:"doorbell_failures"`
	// DoorbellFile is what the doorbell file line 15 names is (flag bit 4
	// and an id only): "live" (its wait set runs: it holds the lock),
	// "dead" (a dead set's leftover: the lock is free), "missing" (no
	// such file: a stale or forged id), or "unknown: ..." (why it cannot
	// tell, e.g. not a regular file). Producers ring a live one only to
	// any effect.
	DoorbellFile    string `json:"doorbell_file,omitempty"`
	Lapped          uint64 `json:"lapped"`
	DelayCount      uint64 `json:"delay_count"`
	DelayMeanNs     uint64 `json:"delay_mean_ns"`
	DelayP50Ns      uint64 `json:"delay_p50_ns"`
	DelayP99Ns      uint64 `json:"delay_p99_ns"`
	TargetDelayNs   int64  `json:"target_delay_ns"`
	Window          uint64 `json:"window_bytes"`
	PressureHigh    uint64 `json:"pressure_high_bytes"`
	PressureLow     uint64 `json:"pressure_low_bytes"`
	Pressure        uint32 `json:"pressure"`
	PressureChanges uint64 `json:"pressure_changes"`

	Slots     int            `json:"producer_slots"`
	Producers []producerInfo `json:"producers"`

	ProducerAttached bool `json:"producer_attached"`
	ConsumerAttached bool `json:"consumer_attached"`

	// Routing counters (line 12, ops.Routing): every router's routing
	// into the ring, summed, up to one router sample interval behind.
	// Display only: another process may have stored anything there.
	Routed         uint64     `json:"routed"`
	Spilled        uint64     `json:"spilled"`
	Skipped        uint64     `json:"skipped_unhealthy"`
	RoutingFlushed *time.Time `json:"routing_flushed"` // null: no router ever flushed
	// Bridges are the ring's bridge blocks (ringctl bridge status): none
	// if no NATS bridge ever ran on it.
	Bridges []bridgeReport `json:"bridges"`
}

// producerInfo is one MPSC producer slot in stat's report.
type producerInfo struct {
	Slot         int     `json:"slot"`
	PID          uint32  `json:"pid"`
	PIDNamespace uint64  `json:"pid_namespace"` // inode of the holder's PID namespace; 0 unknown
	Alive        bool    `json:"alive"`
	Produced     uint64  `json:"messages_in"`
	Bytes        uint64  `json:"bytes_in"`
	Drops        uint64  `json:"drops"`
	Lost         uint64  `json:"lost"`
	HeartbeatAge float64 `json:"heartbeat_age_seconds"`
	LastSeq      uint64  `json:"last_sequence_begun"`     // rings with sequences: the highest written into a record
	DelivSeq     uint64  `json:"last_sequence_delivered"` // the last one of this slot delivered
}

func runStat(io stdio, args []string) error {
	fs := newFlags(io, "stat")
	var loc location
	loc.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	r, err := ipc.Open(pos[0], append(loc.options(), ipc.WithReadOnly())...)
	if err != nil {
		return err
	}
	defer r.Close()
	rep, err := collectStat(r)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printStat(io, rep)
	return nil
}

func collectStat(r *ipc.Ring) (statReport, error) {
	st, err := r.Stats()
	if err != nil {
		return statReport{}, err
	}
	info, err := os.Stat(r.Path())
	if err != nil {
		return statReport{}, err
	}
	rep := statReport{
		Path: r.Path(), Kind: string(st.Kind), Capacity: st.Capacity, MaxMsg: st.MaxMessage,
		FileSize: info.Size(), Mode: fmt.Sprintf("%04o", info.Mode().Perm()),
		ProducerPos: st.ProducerPos, ConsumerPos: st.ConsumerPos, Depth: st.Depth,
		DepthPct:  100 * float64(st.Depth) / float64(st.Capacity),
		HighWater: st.HighWater,
		MsgsIn:    st.MsgsIn, BytesIn: st.BytesIn, MsgsOut: st.MsgsOut, BytesOut: st.BytesOut,
		FullEvents: st.FullEvents, Drops: st.Drops, Spins: st.Spins, Lost: st.Lost, LostBytes: st.LostBytes,
		Slots: st.Slots, Producers: []producerInfo{},
		ConsumerParks: st.ConsumerParks, ConsumerWakeups: st.ConsumerWakeups,
		Yields: st.Yields, ConsumerSpins: st.ConsumerSpins, ConsumerYields: st.ConsumerYields, ConsumerBeatAge: -1,
		ProducerParks: st.ProducerParks, ProducerWakeups: st.ProducerWakeups,
		ProducerPolicy: st.ProducerOverride, ConsumerPolicy: st.ConsumerOverride,
		Overflowed: st.Overflowed, Window: st.Window, PressureHigh: st.PressureHigh, PressureLow: st.PressureLow,
		Pressure: pressureBits(st.Pressure), PressureChanges: st.PressureChanges,
		Timestamps: st.Timestamps, DelayCount: st.DelayCount, TargetDelayNs: int64(st.TargetDelay),
		Sequences: st.Sequences, DropOldest: st.DropOldest, Lapped: st.Lapped, HeaderCommit: st.HeaderCommit,
		Doorbell: st.Doorbell, DoorbellID: st.DoorbellID, DoorbellWakes: st.DoorbellWakes, DoorbellFailures: st.DoorbellFailures,
		ProducerAttached: st.ProducerAttached, ConsumerAttached: st.ConsumerAttached,
		Duplicates: st.Duplicates, LastSeqCommitted: st.LastSeq, LastSeqBegun: st.SeqBegun, LastSeqDelivered: st.DelivSeq,
	}
	if st.Doorbell && st.DoorbellID != 0 {
		rep.DoorbellFile = doorbellFileState(filepath.Join(filepath.Dir(r.Path()), shm.DoorbellName(st.DoorbellID)))
	}
	if st.DelayCount > 0 {
		rep.DelayMeanNs = st.DelaySum / st.DelayCount
		rep.DelayP50Ns = bucketQuantile(st.DelayBuckets[:], st.DelayCount, 0.5)
		rep.DelayP99Ns = bucketQuantile(st.DelayBuckets[:], st.DelayCount, 0.99)
	}
	now := time.Now()
	if st.ConsumerHeartbeat != 0 {
		rep.ConsumerBeatAge = now.Sub(time.Unix(0, st.ConsumerHeartbeat)).Seconds()
	}
	for _, p := range st.Producers {
		rep.Producers = append(rep.Producers, producerInfo{
			Slot: p.Slot, PID: p.PID, PIDNamespace: p.PIDNamespace, Alive: p.Alive, Produced: p.MsgsIn, Bytes: p.BytesIn, Drops: p.Drops, Lost: p.Lost,
			LastSeq: p.LastSeq, DelivSeq: p.DelivSeq,
			HeartbeatAge: now.Sub(time.Unix(0, p.Heartbeat)).Seconds(),
		})
	}
	rep.Pending = pendingMessages(st)
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		rep.OwnerUID = sys.Uid
	}
	rc, err := ops.Routing(r)
	if err != nil {
		return statReport{}, err
	}
	rep.Routed, rep.Spilled, rep.Skipped = rc.Routed, rc.Spilled, rc.Skipped
	if !rc.LastFlush.IsZero() {
		t := rc.LastFlush.UTC()
		rep.RoutingFlushed = &t
	}
	if rep.Bridges, err = bridgeReports(r); err != nil {
		return statReport{}, err
	}
	h := ops.Header(r)
	rep.Created = time.Unix(0, h.CreatedNanos).UTC()
	rep.CreatorPID = h.CreatorPID
	return rep, nil
}

// bucketQuantile estimates a quantile from power-of-two buckets: the upper
// bound of the bucket it falls in (bucket k holds [2^k, 2^(k+1)) ns).
func bucketQuantile(b []uint64, total uint64, q float64) uint64 {
	want := uint64(q*float64(total) + 0.5)
	var cum uint64
	for k, n := range b {
		cum += n
		if cum >= max(want, 1) {
			return uint64(1) << (k + 1)
		}
	}
	return uint64(1) << len(b)
}

// pressureBits is the pressure word as stat --json and watch --json print
// it: bit 0 depth, bit 1 delay (the segment's word).
func pressureBits(p ipc.Pressure) uint32 {
	var w uint32
	if p.Depth {
		w |= 1
	}
	if p.Delay {
		w |= 2
	}
	return w
}

func pressureName(p uint32) string {
	switch p {
	case 0:
		return "none"
	case 1:
		return "raised (depth)"
	case 2:
		return "raised (delay)"
	}
	return "raised (depth and delay)"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printStat(io stdio, r statReport) {
	tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
	p := func(k, format string, a ...any) { fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, a...)...) }
	fmt.Fprintf(tw, "%s\n", show(r.Path))
	fmt.Fprintln(tw, "segment")
	p("kind", "%s", r.Kind)
	p("capacity", "%s", units.FormatSize(r.Capacity))
	p("max message", "%s", units.FormatSize(r.MaxMsg))
	p("records", "%s", recordOptions(r))
	p("file", "%s, mode %s, uid %d", units.FormatSize(uint64(r.FileSize)), r.Mode, r.OwnerUID)
	p("created", "%s by pid %d", r.Created.Format(time.RFC3339), r.CreatorPID)
	fmt.Fprintln(tw, "occupancy")
	p("depth", "%s (%.1f%%), %d messages", units.FormatSize(r.Depth), r.DepthPct, r.Pending)
	p("high watermark", "%s (%.1f%%)", units.FormatSize(r.HighWater), 100*float64(r.HighWater)/float64(r.Capacity))
	p("positions", "producer %d, consumer %d", r.ProducerPos, r.ConsumerPos)
	fmt.Fprintln(tw, "traffic")
	p("in", "%d messages, %s", r.MsgsIn, units.FormatSize(r.BytesIn))
	p("out", "%d messages, %s", r.MsgsOut, units.FormatSize(r.BytesOut))
	fmt.Fprintln(tw, "backpressure")
	p("full events", "%d", r.FullEvents)
	p("drops", "%d", r.Drops)
	p("spins, yields", "producers %d, %d; consumer %d, %d", r.Spins, r.Yields, r.ConsumerSpins, r.ConsumerYields)
	p("overflowed", "%d", r.Overflowed)
	if r.DropOldest {
		p("lapped", "%d reads discarded: reclaimed by a producer first", r.Lapped)
	}
	if r.Sequences {
		if r.Kind == "mpsc" {
			p("sequences", "%d duplicates discarded (per producer below)", r.Duplicates)
		} else {
			p("sequences", "%d duplicates discarded; last begun %d, committed %d, delivered %d", r.Duplicates, r.LastSeqBegun, r.LastSeqCommitted, r.LastSeqDelivered)
		}
	}
	if r.Timestamps {
		p("queueing delay", "%d measured, mean %v, p50 < %v, p99 < %v", r.DelayCount, time.Duration(r.DelayMeanNs), time.Duration(r.DelayP50Ns), time.Duration(r.DelayP99Ns))
		if r.TargetDelayNs != 0 {
			p("target delay", "%v", time.Duration(r.TargetDelayNs))
		}
	}
	if r.PressureHigh != 0 || r.TargetDelayNs != 0 {
		p("pressure", "%s (high %s, low %s), %d changes", pressureName(r.Pressure), units.FormatSize(r.PressureHigh), units.FormatSize(r.PressureLow), r.PressureChanges)
	}
	if r.Window != 0 {
		p("window", "%s", units.FormatSize(r.Window))
	}
	p("parks", "producers %d, consumer %d", r.ProducerParks, r.ConsumerParks)
	p("wake-ups", "of producers %d, of the consumer %d", r.ProducerWakeups, r.ConsumerWakeups)
	if r.Doorbell {
		id := "none"
		if r.DoorbellID != 0 {
			id = fmt.Sprintf("%016x (%s)", r.DoorbellID, doorbellFileWords(r.DoorbellFile, r.ConsumerAttached))
		}
		p("doorbell", "%s, wakes %d, failures %d", id, r.DoorbellWakes, r.DoorbellFailures)
	}
	if r.ProducerPolicy != "" || r.ConsumerPolicy != "" {
		p("policy override", "producers %s, consumer %s", orNone(r.ProducerPolicy), orNone(r.ConsumerPolicy))
	}
	if r.Kind == "mpsc" {
		p("lost", "%d records of dead producers, %s", r.Lost, units.FormatSize(r.LostBytes))
	}
	if r.Routed != 0 || r.Spilled != 0 || r.Skipped != 0 {
		fmt.Fprintln(tw, "routing (every router, summed)")
		p("routed", "%d messages", r.Routed)
		p("spilled", "%d keyed here, sent elsewhere", r.Spilled)
		p("skipped", "%d times out of the rotation", r.Skipped)
		if r.RoutingFlushed != nil {
			p("updated", "%v ago", time.Since(*r.RoutingFlushed).Round(time.Millisecond))
		}
	}
	fmt.Fprintln(tw, "attached")
	if r.Kind == "mpsc" {
		alive := 0
		for _, pr := range r.Producers {
			if pr.Alive {
				alive++
			}
		}
		p("producers", "%d of %d slots held", alive, r.Slots)
	} else {
		p("producer", "%s", yesNo(r.ProducerAttached))
	}
	if r.ConsumerBeatAge >= 0 {
		p("consumer", "%s, last heartbeat %v ago", yesNo(r.ConsumerAttached), time.Duration(r.ConsumerBeatAge*float64(time.Second)).Round(time.Millisecond))
	} else {
		p("consumer", "%s", yesNo(r.ConsumerAttached))
	}
	_ = tw.Flush()
	if len(r.Producers) > 0 {
		fmt.Fprintln(io.out, "producers")
		tw = tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
		seqHead := ""
		if r.Sequences {
			seqHead = "\tseq begun\tseq delivered"
		}
		fmt.Fprintln(tw, "  slot\tpid\tpid ns\talive\tproduced\tbytes\tdrops\tlost\theartbeat"+seqHead)
		for _, pr := range r.Producers {
			seq := ""
			if r.Sequences {
				seq = fmt.Sprintf("\t%d\t%d", pr.LastSeq, pr.DelivSeq)
			}
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%d\t%s\t%d\t%d\t%s ago%s\n", pr.Slot, pr.PID, pidNamespace(pr.PIDNamespace), yesNo(pr.Alive), pr.Produced,
				units.FormatSize(pr.Bytes), pr.Drops, pr.Lost, time.Duration(pr.HeartbeatAge*float64(time.Second)).Round(time.Millisecond), seq)
		}
		_ = tw.Flush()
	}
	printBridges(io.out, r.Bridges)
}

// pidNamespace describes a producer's PID namespace for stat's table:
// "this" (ringctl's own: the PID is one ringctl's /proc shows), "unknown",
// or the namespace's inode number (a container's: the PID is not a host
// PID).
func pidNamespace(ns uint64) string {
	switch ns {
	case 0:
		return "unknown"
	case proc.PIDNamespace():
		return "this"
	}
	return strconv.FormatUint(ns, 10)
}

// recordOptions names what the ring's records carry and allow, as created.
func recordOptions(r statReport) string {
	var o []string
	if r.Timestamps {
		o = append(o, "timestamps")
	}
	if r.Sequences {
		o = append(o, "sequences")
	}
	if r.DropOldest {
		o = append(o, "drop-oldest")
	}
	if r.HeaderCommit {
		o = append(o, "header-commit")
	}
	if r.Doorbell {
		o = append(o, "doorbell")
	}
	if len(o) == 0 {
		return "plain"
	}
	return strings.Join(o, ", ")
}

// doorbellFileState says what the doorbell file at path is, as ringctl
// doctor tells it: "live", "dead", "missing" or "unknown: why"
// (statReport.DoorbellFile).
func doorbellFileState(path string) string {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return "missing"
	}
	alive, err := shm.DoorbellAlive(path)
	switch {
	case err != nil:
		return "unknown: " + err.Error()
	case alive:
		return "live"
	}
	return "dead"
}

// doorbellFileWords is the text form of a DoorbellFile state; consumer
// says whether a consumer holds the ring's role.
func doorbellFileWords(state string, consumer bool) string {
	switch {
	case state == "live" && consumer:
		return "a running wait set's doorbell file"
	case state == "live":
		return "a running wait set's doorbell file, but no consumer holds this ring's role: not this ring's set (a stale or forged id)"
	case state == "dead":
		return "the doorbell file of a dead wait set (its lock is free): nobody sleeps on it; 'ringctl doctor --repair' removes it"
	case state == "missing":
		return "no such doorbell file: a stale or forged id; producers count a failure and wake line 5"
	}
	return "cannot tell: " + strings.TrimPrefix(state, "unknown: ")
}
