// Package bridge carries messages between shmring rings and NATS JetStream
// streams, so that co-located processes that outgrow one host hand their
// messages to a distributed engine users already run.
//
// Two directions: [In], stream → ring, reads a stream through a durable
// pull consumer and writes each message into a local ring as that ring's
// producer, exactly once and in stream order; [Out], ring → stream, is a
// ring's consumer publishing each message to the stream that captures a
// subject, at least once, de-duplicated, in ring order. Each carries
// backpressure across (the in-bridge stops fetching while its ring's
// pressure is raised; the out-bridge's full window fills the ring), and
// both are run by ringctl bridge and watched from the ring's segment (see
// the last sections).
//
// # The in direction's guarantee
//
// Every message the durable consumer would deliver lands in the ring exactly
// once and in stream order, across bridge crashes at any instruction, server
// restarts and reconnections, as long as the ring is not recreated and the
// stream keeps its messages until they are acknowledged. How:
//
//   - At least once from the stream: a message is acknowledged only after
//     the ring holds it (its write returned), so a bridge killed before that
//     leaves it unacknowledged and the server still has it.
//   - De-duplicated by the ring's sequence check: the bridge writes each
//     message with its stream sequence as the ring's message sequence
//     ([ipc.Producer.WriteSeq]); the ring's producer keeps, in shared memory
//     and across restarts, the highest sequence it may have committed
//     ([ipc.Producer.InDoubt]), and its consumer discards a record at or
//     below the last sequence it delivered. A successor bridge skips what is
//     certainly in the ring and re-writes only what its predecessor may
//     have died writing, which the ring's consumer discards if it landed.
//   - In order, without relying on redelivery timing: after a crash the
//     server would redeliver the predecessor's unacknowledged messages only
//     once their AckWait expires, after newer ones; the ring's duplicate
//     check would then discard them as old. So the bridge never writes a
//     message until it has written every earlier one: at start, after any
//     error or reconnection, after a fetch the server did not end in time,
//     and whenever the consumer's delivery sequence shows a delivery it did
//     not receive, it reads the consumer's state
//     and fetches the messages delivered but not in the ring straight from
//     the stream (by sequence and the consumer's filter), writes them, and
//     then goes on with the consumer.
//
// # Backpressure
//
// The bridge writes with the producer's default full-ring behaviour: it waits
// for room, never drops. Before each fetch it looks at the ring's pressure
// ([ipc.Producer.Pressure], raised at [ipc.Config.HighWater] or by queueing
// delay); while it is raised the bridge fetches nothing, and it resumes when
// the pressure falls (at [ipc.Config.LowWater]). Meanwhile messages stay in
// the stream, where its limits and the consumer's MaxAckPending apply. The
// bridge holds at most one fetch batch in memory.
//
// # Ordering with several publishers
//
// The ring sees one producer, the bridge, and the stream's order: messages of
// several NATS publishers arrive interleaved as the stream stored them, each
// publisher's own messages in the order the stream received them. The ring's
// sequences are stream sequences, not the publishers' own. In an MPSC ring
// the bridge is one producer slot among others, ordered only against itself.
//
// # The out direction's guarantee
//
// At least once into the stream, de-duplicated within the stream's
// duplicate window, in each producer's order (in ring order with one
// connection): effectively exactly once while every outage is shorter
// than that window. How:
//
//   - At least once: the bridge holds what it reads
//     ([ipc.ConsumerConfig].Hold) and releases the ring
//     ([ipc.Consumer.Release]) only up to the last message whose
//     acknowledgement and every earlier one's have arrived, so a bridge
//     killed at any instruction leaves every unacknowledged message in the
//     ring, and its successor publishes again from the released position.
//     A failed publish, an acknowledgement timed out or lost with a
//     connection: the window is published again the same way.
//   - De-duplicated: each message is published with a Nats-Msg-Id that is
//     the same at every publish of it and unique in the ring's life:
//     ID:slot:seq (the ring's identity, the producer slot, the producer's
//     sequence) in a ring with sequences, ID:pPOS (its ring position)
//     without. The stream discards a publish of an ID it stored within its
//     duplicate window.
//   - Beyond the window, duplicates are possible: a message the stream
//     stored but whose acknowledgement the bridge did not receive and
//     release (at most Window of them) is stored again if it is published
//     again more than the duplicate window after it was stored: the bridge
//     down, or the server out of reach, for that long.
//   - In order: the bridge publishes on [OutConfig].Conns connections
//     (by default one per MPSC producer slot, up to 4), each producer
//     slot's messages on one of them, in ring order, without a reconnect
//     buffer, and after a failure on any of them the whole window is
//     published again in order: each producer's messages land in its
//     order (the ring's interleaving of producers on different
//     connections is not kept; with one connection it is). Only a publish
//     the stream refuses while accepting a later one already in flight
//     lands late (at most Window places). With [OutConfig].StrictOrder not
//     even that, on one connection: each publish expects the previous
//     message's Msg-Id as the stream's last (Nats-Expected-Last-Msg-Id),
//     so the stream refuses every publish after a refused one and the
//     bridge publishes again from it; the bridge must then be the stream's
//     only writer (Run stops, naming another one).
//
// A message the stream can never take (larger than the server's
// max_payload or the stream's MaxMsgSize) is refused by [NewOut] for the
// ring's MaxMessage, and stops [Out.Run] if the limit was lowered since:
// the error names the message, the limit and the fix, and the message
// stays in the ring. So does the server refusing the bridge's publishes,
// or its subscription to their acknowledgements, for want of permissions.
//
// # Backpressure out
//
// The bridge's memory is bounded by OutConfig.Window: payloads stay in the
// ring until released. A full window stops the reading, the ring fills,
// and its producers' policy applies (they wait, park, drop and count, or
// overflow).
//
// # Running and watching
//
// ringctl bridge out|in runs either direction from the command line (with
// --embedded, an in-process JetStream server for trying it on one
// machine). Every bridge publishes its state in its ring's segment, read
// from any process by ringctl bridge status, ringctl stat and the metrics
// package's Prometheus collectors.
//
// docs/bridge.md has the configuration, the failure cases, what each
// counter means, and the measurements (throughput against direct
// publishing, a producer's Write latency with the bridge, the bridge's
// memory under a stall).
package bridge
