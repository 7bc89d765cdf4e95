package bridge

import "fmt"

// InStats is a snapshot of an in-bridge's state, for metrics and ringctl.
// Counters count since NewIn; each is read atomically, not all at one
// instant.
type InStats struct {
	// Fetched counts deliveries received from the durable consumer,
	// redeliveries included.
	Fetched uint64
	// Written counts messages written into the ring (Recovered included).
	Written uint64
	// Duplicates counts deliveries not written because the ring holds them
	// already (a redelivery, or a message recovered from the stream before
	// the consumer redelivered it).
	Duplicates uint64
	// Acked counts messages acknowledged to the stream: each written or
	// found a duplicate, after the ring held it. Acked <= Written +
	// Duplicates.
	Acked uint64
	// Recovered counts messages read straight from the stream at a resync:
	// delivered by the consumer earlier (to a bridge that died, or a fetch
	// whose reply was lost) but not in the ring.
	Recovered uint64
	// Resyncs counts readings of the consumer's state (at each Run's start,
	// after every error and reconnection, after a fetch the server did not
	// end in time, at each gap); Gaps the skips found in the delivery
	// sequence (deliveries never received).
	Resyncs uint64
	Gaps    uint64
	// Resets counts the consumer reset to deliver after the ring's last
	// message (AckPolicy explicit: to release the deliveries a dead
	// predecessor left pending acknowledgement).
	Resets uint64
	// Errors counts NATS-side failures (each retried, but for a refusal
	// that stops Run: In.Run) and writes retried; LastError is the last of
	// them ("" none).
	Errors    uint64
	LastError string
	// Paused: fetching is stopped because the ring's pressure is raised.
	// Pauses counts the times it stopped, PauseChecks the looks at the
	// pressure while stopped (every few milliseconds).
	Paused      bool
	Pauses      uint64
	PauseChecks uint64
	// LastSeq is the stream sequence up to which every message of the
	// consumer is in the ring.
	LastSeq uint64
	// State is what Run is doing: "idle" (not running), "resyncing",
	// "fetching" (or writing a batch), "paused", "retrying", "stopped".
	State string
	// Connection is the NATS connection's status ("CONNECTED",
	// "RECONNECTING", "CLOSED", ...) and Reconnects how many times it
	// reconnected.
	Connection string
	Reconnects uint64
}

// Stats returns the bridge's state. Safe for concurrent use, at any time.
func (b *In) Stats() InStats {
	s := &b.st
	st := InStats{
		Fetched:     s.fetched.Load(),
		Written:     s.written.Load(),
		Duplicates:  s.dups.Load(),
		Acked:       s.acked.Load(),
		Recovered:   s.recovered.Load(),
		Resyncs:     s.resyncs.Load(),
		Gaps:        s.gaps.Load(),
		Resets:      s.resets.Load(),
		Errors:      b.errors.Load(),
		Paused:      s.paused.Load(),
		Pauses:      s.pauses.Load(),
		PauseChecks: s.checks.Load(),
		LastSeq:     s.high.Load(),
		State:       b.stateName(),
		Connection:  b.nc.Status().String(),
		Reconnects:  b.nc.Stats().Reconnects,
	}
	st.LastError = b.lastError()
	return st
}

// String prints the counters on one line.
func (s InStats) String() string {
	return fmt.Sprintf("state=%s conn=%s fetched=%d written=%d dups=%d acked=%d recovered=%d resyncs=%d gaps=%d resets=%d errors=%d paused=%v pauses=%d last_seq=%d",
		s.State, s.Connection, s.Fetched, s.Written, s.Duplicates, s.Acked, s.Recovered, s.Resyncs, s.Gaps, s.Resets, s.Errors, s.Paused, s.Pauses, s.LastSeq)
}

// statusSample is the bridge block's sample of In (status.go), taken
// every 100 ms by the block's goroutine.
func (b *In) statusSample() statusSample {
	st := b.Stats()
	var paused uint64
	if st.Paused {
		paused = 1
	}
	return statusSample{
		State: stateCode(st.State), Connection: connCode(b.nc.Status()),
		Window: uint64(b.cfg.Batch), InFlight: paused,
		Moved: st.Written, Acked: st.Acked, Errors: st.Errors, Reconnects: st.Reconnects,
		Duplicates: st.Duplicates, Mark: st.LastSeq,
	}
}
