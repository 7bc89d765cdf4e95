// Package metrics exports shmring rings' counters to Prometheus.
//
// It is a package of its own so that a program that only moves messages
// (a producer, a consumer) links the transport, [ipc], and nothing of
// Prometheus, protobuf or net/http: only the program that serves metrics
// (ringctl serve, or a service's own /metrics handler) imports metrics.
//
// Four collectors, all implementing prometheus.Collector:
//
//   - [Collector] ([NewCollector]) exports a fixed set of rings that the
//     program has open, each under the "ring" label it is given.
//   - [DirCollector] ([NewDirCollector]) exports every ring in a directory,
//     listed afresh at each scrape and opened read-only for it, and counts
//     the files that cannot be read as rings in shmring_unreadable_segments.
//   - [RouterCollector] ([NewRouterCollector]) exports a route.Router's
//     own counters (shmring_route_...), current to the message, which live
//     in the routing process: only that process can export them. The ring
//     collectors above export the routing counters kept in each ring's
//     segment instead (shmring_routed_messages_total,
//     shmring_spilled_messages_total, shmring_unhealthy_skips_total:
//     every router's, summed, up to one router sample interval behind;
//     see ops.Routing).
//   - [WaitSetCollector] ([NewWaitSetCollector]) exports a waitset.Set's
//     counters (shmring_waitset_...), per member ring and for the set, which
//     live in the consuming process, as a router's do.
//
// The two ring collectors read the counters from the segment at scrape time, through
// [ipc.Ring.Stats]: producers and consumers pay nothing for being watched,
// and a scrape never blocks them. A ring that cannot be read (closed,
// truncated, damaged) is left out of the scrape rather than failing it.
//
// The metric names, their labels and their HELP texts are a contract
// (dashboards and alerts are written against them): docs/operations.md
// lists them, and they change only with a release note. Label values that
// come from another process (a ring's file name) are quoted when they are
// not safe to print, so a hostile name can neither break the exposition
// nor write terminal escapes to whoever reads it.
//
// Caveats: [Collector] holds the rings it was given, which must stay open
// while it is registered (a closed ring is skipped); the queue-delay
// histogram exists only for rings created with timestamps, and its buckets
// are the segment's powers of two of nanoseconds.
package metrics
