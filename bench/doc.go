package bench

// How Run computes each figure of results.Record (design.md section 5 is
// the contract; this is the implementation).
//
// Window. The publisher is started through POST /control/start with the
// rate, payload, schedule, spin, duration = warm-up + window and, for the
// constant schedule, events = the count that duration holds. Its answer
// carries Started; the window is [Started+warm-up, Started+warm-up+duration)
// on the events' scheduled time t. Event e is in the window iff t(e) is.
//
// Expected, delivered, lost. t grows with seq, so the in-window events are
// one seq range lo..hi: hi is the run's last published seq, lo the seq after
// the last warm-up event any client received (cross-checked with the lowest
// in-window seq received; if no client saw the events around the boundary,
// the constant schedule's arithmetic decides, and for Poisson the unseen
// events count as in the window, so loss is never hidden). expected =
// (hi−lo+1) × clients. Each client keeps a bitset over the run's seqs:
// delivered = set bits in lo..hi; duplicates = in-window deliveries of a set
// bit; out_of_order = first in-window deliveries below a seq the client had
// already received; lost = expected − delivered (events named by gap
// notices, and events that had not arrived when the drain limit passed).
// reconnects = the clients' Counters.Reconnects over the whole run.
//
// Latency. t_recv − t(e) in ns with t_recv = Batch.Recv, recorded for the
// first in-window delivery of each (client, event) only, so latency count ==
// delivered (minus out_of_range). One histogram per shard of clients
// (shardCount, one mutex each, taken once per batch), merged at the end
// with results.MergeInto (which fails on a dropped value). Values below
// 1 µs are recorded in the histogram's lowest bucket (512 ns resolution);
// negative values (a wall-clock step) and values above 1 h are counted in
// out_of_range, and the histogram_range check fails.
//
// Window snapshots. At Started+warm-up−h and at the window's end−h, where
// h = half the mean event interval (so each snapshot falls between two
// scheduled events and a boundary event's traffic is wholly on one side),
// Run reads the clients' Counters, its own getrusage, then GET /stats. With
// less warm-up than h the first snapshot is taken just before the publisher
// starts. Differences of the two snapshots give:
//   - wire down/up bytes: clients' Counters (bytes at each net.Conn);
//     per event = ÷ delivered; per client-second = ÷ (clients × snapshot
//     interval);
//   - server_out/in_bytes: the listener's counts less the harness's own
//     /stats and /control traffic between the server-side snapshots (the
//     control connection is counted too);
//   - requests, empty_responses: clients' Counters; requests_per_event =
//     requests ÷ delivered; empty_share = empty ÷ requests;
//   - server CPU: process user+sys from /stats; the publisher thread's CPU
//     (its spin) is excluded: the difference of the live publisher_cpu_ns
//     of the two window snapshots; cpu_us_per_event = (CPU − publisher) ÷ delivered;
//   - client CPU: this process's getrusage; utilisation = CPU ÷ (snapshot
//     interval × CPUs it may use (affinity ∩ GOMAXPROCS));
//   - slow_disconnects, stalls: the transport's server counters.
//
// deliveries_per_s = delivered ÷ window duration.
//
// Memory per connection: (RSS, HeapInuse, goroutines from /stats once every
// client is subscribed − the same before the first client connected) ÷
// clients. Only meaningful with the server in its own process.
//
// Self-checks (Record.Checks; a failed one is named in the summary line):
//   - publisher_on_schedule: at most 1% of events (rounded up) published
//     more than 1 ms late;
//   - client_cpu: load-generator utilisation ≤ 80%;
//   - histogram_range: out_of_range == 0 and the merge dropped nothing;
//   - bytes_agree: client and server-listener bytes agree within 1% or
//     4 KiB over the whole run, from before the first client connected to
//     after the drain: both ends are quiet points, so the counts match
//     exactly for the push transports (short polls in flight at the last
//     snapshot aside). The window's own counts are in the detail; they can
//     differ by the traffic in flight at the window's edges, which the
//     server counts when it writes and a client when it reads;
//   - no_loss: lost == 0;
//   - clients_alive (only when failing): some subscriber gave up;
//   - complete (only when failing): the run was interrupted (partial).
