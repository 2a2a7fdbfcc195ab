// Package results defines the result record that `pushbench run` writes and
// every later stage reads, the run folder's files (results.jsonl,
// result.json, run.json) and the latency histograms. The saved files are
// the interface between the stages: package report turns them into
// summaries, bench.txt, charts and index.html without re-running anything.
package results

import (
	"maps"
	"slices"
)

// Schema names the version of Record. Bump it when a field changes meaning
// or is renamed; adding fields keeps the version.
const Schema = "pushbench.result/v1"

// Record is the result of one scenario cell: `result.json` of a single run,
// one line of `results.jsonl` in a comparison. The field names are the
// contract of design.md section 8; docs/results.md documents each one.
type Record struct {
	Schema   string   `json:"schema"`
	Scenario Scenario `json:"scenario"`
	// Status is "ok" (the run went to its end; its checks may still have
	// failed), "partial" (interrupted; the figures cover what was
	// measured), "failed" (ended by an error, such as the server dying;
	// what was measured until then is kept) or "error" (nothing was
	// measured: only the scenario and Error). Empty in records written
	// before the field existed: read it through StatusOf.
	Status string `json:"status"`
	// Error is why a failed or errored cell ended, one line.
	Error   string  `json:"error,omitempty"`
	Latency Latency `json:"latency_ns"`

	// Events is the number of independent events published in the
	// window: the sample size of every latency percentile (clients only
	// multiply the deliveries of each event).
	Events uint64 `json:"events"`

	Expected   uint64 `json:"expected"`     // events × clients that should have arrived
	Delivered  uint64 `json:"delivered"`    // distinct (client, event) deliveries
	Lost       uint64 `json:"lost"`         // expected but never delivered (gaps included)
	Duplicates uint64 `json:"duplicates"`   // deliveries of an event the client already had
	OutOfOrder uint64 `json:"out_of_order"` // deliveries with a seq below one already seen
	Reconnects uint64 `json:"reconnects"`
	// ReconnectGap is the time from a stream seen ended to the same
	// subscriber's stream open again, over the whole run (CutEveryNs, or
	// any other end); nil when no stream reconnected.
	ReconnectGap *Latency `json:"reconnect_gap_ns,omitempty"`

	Wire Wire `json:"wire"`
	// Browser is the pages' side when the subscribers were browser pages.
	Browser *Browser `json:"browser,omitempty"`
	// Agents are the load generators of a run spread over agents (pushbench
	// agent), one row each; the record's figures are their exact merge.
	Agents []Agent `json:"agents,omitempty"`

	// The upstream of chat and game: messages (inputs) handed over with a
	// scheduled send time in the window, sends that failed there, the
	// upstream requests per message (POST /send; 0 on a stream), and the
	// senders' lateness against their schedule (in every latency).
	Sent               uint64  `json:"sent,omitempty"`
	SendErrors         uint64  `json:"send_errors,omitempty"`
	RequestsPerMessage float64 `json:"requests_per_message,omitempty"`
	SendLagP50Ns       int64   `json:"send_lag_p50_ns,omitempty"`
	SendLagP99Ns       int64   `json:"send_lag_p99_ns,omitempty"`
	// InputLatency is the game's: from an input's scheduled send time to
	// the receipt of the first snapshot that acknowledged it.
	InputLatency *Latency `json:"input_latency_ns,omitempty"`

	Requests         uint64  `json:"requests"`
	RequestsPerEvent float64 `json:"requests_per_event"`
	EmptyResponses   uint64  `json:"empty_responses"`
	EmptyShare       float64 `json:"empty_share"` // empty responses ÷ requests

	Server Server `json:"server"`
	Client Client `json:"client"`
	// Conn is what setting up a connection and an idle request cost:
	// TLS handshakes, the connect phase, requests with no event.
	Conn Conn `json:"conn"`

	DeliveriesPerS float64 `json:"deliveries_per_s"`

	// Emulator is the network emulator's cost over the window (zero
	// without one): its own process, never charged to server or clients.
	Emulator Emulator `json:"emulator"`

	// MachineCPUUtilisation is the whole machine's CPU use over the window
	// (/proc/stat, every process): above 90% every latency includes
	// queueing for a core.
	MachineCPUUtilisation float64 `json:"machine_cpu_utilisation"`
	// ClockDriftNs is how far the wall clock moved against the monotonic
	// clock over the run; latency is computed from wall-clock stamps of
	// two processes.
	ClockDriftNs int64 `json:"clock_drift_ns"`
	// ClockOffsetNs and ClockUncertaintyNs are the load generator's clock
	// offset to a server on another host (the server's clock minus its
	// own) and the bound on its error, applied to every receive stamp;
	// absent on loopback (one clock). Runs on agents have them per row.
	ClockOffsetNs      int64 `json:"clock_offset_ns,omitempty"`
	ClockUncertaintyNs int64 `json:"clock_uncertainty_ns,omitempty"`

	Publisher Publisher `json:"publisher"`

	// Checks are the self-checks; a failed one is named in the summary line.
	Checks map[string]Check `json:"checks"`
	// Partial is true when the run was interrupted or cut short; the
	// figures cover only what was measured.
	Partial bool `json:"partial"`

	Env Env `json:"env"`

	// Histogram is the merged latency histogram as an HdrHistogram V2
	// compressed, base64 snapshot (hdrhistogram.Decode reads it back), so
	// results of several processes can be merged later.
	Histogram string `json:"histogram"`

	StartedAt  string `json:"started_at"`  // RFC 3339
	FinishedAt string `json:"finished_at"` // RFC 3339
}

// Statuses of a record.
const (
	StatusOK      = "ok"
	StatusPartial = "partial"
	StatusFailed  = "failed"
	StatusError   = "error"
)

// StatusOf returns r's status, deriving it for records written before the
// field existed.
func StatusOf(r *Record) string {
	switch {
	case r.Status != "":
		return r.Status
	case r.Partial:
		return StatusPartial
	}
	return StatusOK
}

// FailedChecks returns the names of r's failed self-checks, sorted.
func (r *Record) FailedChecks() []string {
	var names []string
	for _, name := range slices.Sorted(maps.Keys(r.Checks)) {
		if !r.Checks[name].OK {
			names = append(names, name)
		}
	}
	return names
}

// Scenario is what was asked for.
type Scenario struct {
	Transport   string  `json:"transport"`
	Clients     int     `json:"clients"`
	Rate        float64 `json:"rate"`    // events per second
	Payload     int     `json:"payload"` // bytes per encoded event
	IntervalNs  int64   `json:"interval_ns"`
	DurationNs  int64   `json:"duration_ns"` // measured window
	WarmupNs    int64   `json:"warmup_ns"`
	HoldNs      int64   `json:"hold_ns"`      // long-poll hold timeout
	IdleNs      int64   `json:"idle_ns"`      // idle interval measured before the publisher starts
	ConnectRate float64 `json:"connect_rate"` // new connections per second
	DrainNs     int64   `json:"drain_ns"`     // bound on the drain phase
	Schedule    string  `json:"schedule"`     // constant or poisson
	Ring        int     `json:"ring"`         // server ring size K
	Server      string  `json:"server"`       // URL when --server was given; "" = child process
	ServerCPUs  string  `json:"server_cpus"`  // CPU list the server was pinned to ("" = not pinned)
	ClientCPUs  string  `json:"client_cpus"`  // CPU list the load generator was pinned to
	SourceAddrs int     `json:"source_addrs"` // loopback source addresses used
	// Network is the emulated network between the clients and the server
	// ("loopback", all zero: none).
	Network Network `json:"network"`

	// How HTTP was spoken (docs/http.md). Records made before these
	// existed lack them; "" reads as the defaults (1.1, go, minimal, x).
	HTTP            string `json:"http,omitempty"`             // 1.1 or 2
	TLS             bool   `json:"tls"`                        // TLS 1.3 on every connection
	Headers         string `json:"headers,omitempty"`          // request header profile: go or browser
	ResponseHeaders string `json:"response_headers,omitempty"` // response header profile: minimal or deployment
	CookieBytes     int    `json:"cookie_bytes"`               // Cookie header value length (0: none)
	Compress        bool   `json:"compress"`                   // gzip / permessage-deflate offered and enabled
	Pad             string `json:"pad,omitempty"`              // event padding: x or text

	// The workload (docs/design.md section 5): broadcast ("" in records
	// made before workloads existed), chat or game, with its settings.
	Workload  string  `json:"workload,omitempty"`
	Room      int     `json:"room,omitempty"`       // clients per room (chat, game)
	SendRate  float64 `json:"send_rate,omitempty"`  // messages per second per client (chat)
	Tick      float64 `json:"tick,omitempty"`       // snapshots per second per room (game)
	InputRate float64 `json:"input_rate,omitempty"` // inputs per second per client (game)

	// Client is "browser" when the subscribers were pages in headless
	// Chromium ("" : the harness's Go clients), in Browsers processes.
	Client   string `json:"client,omitempty"`
	Browsers int    `json:"browsers,omitempty"`
	// CutEveryNs is how long after it opened the server ended each stream
	// (0: never); SSERetryNs the reconnection time its SSE streams
	// announced (retry:; 0: none).
	CutEveryNs int64 `json:"cut_every_ns,omitempty"`
	SSERetryNs int64 `json:"sse_retry_ns,omitempty"`
}

// Browser is the browsers' side of a run whose subscribers were pages in
// headless Chromium (Scenario.Client "browser").
type Browser struct {
	Version  string `json:"version"`  // Chromium's product and version
	Browsers int    `json:"browsers"` // Chromium processes
	Pages    int    `json:"pages"`
	// Subscribed pages had their subscription in place (stream open, first
	// poll answered or sent).
	Subscribed int `json:"subscribed"`
	// Held pages issued their subscription's request but never got an
	// answer: the browser held it back (six HTTP/1.1 connections per host
	// per browser, shared by its pages). They receive nothing: every event
	// is lost to them.
	Held int `json:"held"`
	// Failed pages crashed or stopped on an error (FirstError).
	Failed     int    `json:"failed"`
	FirstError string `json:"first_error,omitempty"`
	// OverLimit is how many pages had more than six HTTP/1.1 pages of their
	// browser before them on the same host (0 over HTTP/2 or WebSocket):
	// SSE pages beyond the limit are held, polls beyond it queue.
	OverLimit int `json:"over_limit"`
	// CPU of every Chromium process over the window, per page per second,
	// and as a share of the machine's CPUs.
	CPUUs           float64 `json:"cpu_us"`
	CPUUsPerPageS   float64 `json:"cpu_us_per_page_s"`
	CPUUtilisation  float64 `json:"cpu_utilisation"`
	CPUUsPerEvent   float64 `json:"cpu_us_per_event"`
	PSSBytes        int64   `json:"pss_bytes"` // every Chromium process at the window's end, proportional
	PSSBytesPerPage float64 `json:"pss_bytes_per_page"`
	RSSBytes        int64   `json:"rss_bytes"` // summed RSS (shared pages counted once per process)
	// MemoryError says why the memory figures are missing (a Chromium
	// had exited, /proc could not be read).
	MemoryError string `json:"memory_error,omitempty"`
	// SettleNs is how long the run waited, every page subscribed, for
	// the browsers to finish starting up (under a tenth of a core each
	// over half a second) before it went on; the browsers_settled check
	// fails if they never did.
	SettleNs int64 `json:"settle_ns"`
}

// Network is an emulated network profile: RTT split half per direction,
// jitter, and the bandwidth of each direction (0: unlimited).
type Network struct {
	Name     string `json:"name"`
	RTTNs    int64  `json:"rtt_ns"`
	JitterNs int64  `json:"jitter_ns"`
	DownBps  int64  `json:"down_bps"`
	UpBps    int64  `json:"up_bps"`
	// ProbeRTTNs is the median round trip of a tiny request measured
	// through the emulator before the run; ExpectedRTTNs is the profile's
	// RTT plus that request's and answer's serialisation at the emulated
	// bandwidths. The network_applied check compares them.
	ProbeRTTNs    int64 `json:"probe_rtt_ns,omitempty"`
	ExpectedRTTNs int64 `json:"expected_rtt_ns,omitempty"`
}

// Latency summarises delivery latency t_recv − t over the measured window,
// in nanoseconds.
type Latency struct {
	Min        int64   `json:"min"`
	P50        int64   `json:"p50"`
	P90        int64   `json:"p90"`
	P99        int64   `json:"p99"`
	P999       int64   `json:"p999"`
	Max        int64   `json:"max"`
	Mean       float64 `json:"mean"`
	Count      int64   `json:"count"`
	OutOfRange uint64  `json:"out_of_range"` // values the histogram could not hold (outside 1 µs..1 h)
}

// Wire holds bytes counted at the clients' net.Conn over the measured
// window, and the server listener's count of the same traffic.
type Wire struct {
	DownBytes             uint64  `json:"down_bytes"`
	UpBytes               uint64  `json:"up_bytes"`
	DownBytesPerEvent     float64 `json:"down_bytes_per_event"` // per delivered event
	UpBytesPerEvent       float64 `json:"up_bytes_per_event"`
	DownBytesPerClientSec float64 `json:"down_bytes_per_client_s"`
	UpBytesPerClientSec   float64 `json:"up_bytes_per_client_s"`
	ServerOutBytes        uint64  `json:"server_out_bytes"` // at the server's listener
	// UpBytesPerMessage is the window's upstream bytes ÷ messages sent in
	// it (chat, game): the send path and, for polling, the polls too.
	UpBytesPerMessage float64 `json:"up_bytes_per_message,omitempty"`
	ServerInBytes     uint64  `json:"server_in_bytes"`
	// Source is where the byte counts above come from: "" for the clients'
	// sockets, "server" when the clients' sockets are not visible (browser
	// pages) and the server's listener counted them, less the harness's
	// control traffic.
	Source string `json:"source,omitempty"`
}

// Server is the server process's cost.
type Server struct {
	CPUUsPerEvent float64 `json:"cpu_us_per_event"` // (user+sys − publisher thread) ÷ deliveries: gross
	// CPUUsPerEventNet is CPUUsPerEvent less the idle cost of holding the
	// connections for the window (IdleCPUUsPerConnS × clients × window):
	// what delivering the events cost.
	CPUUsPerEventNet float64 `json:"cpu_us_per_event_net"`
	// IdleCPUUsPerConnS is CPU µs per connection per second of holding
	// it with nothing published (measured before the publisher starts):
	// polling pays here, push transports should not.
	IdleCPUUsPerConnS float64 `json:"idle_cpu_us_per_conn_s"`
	CPUUs             float64 `json:"cpu_us"`           // user+sys over the measured window
	PublisherCPUUs    float64 `json:"publisher_cpu_us"` // publisher thread, excluded above
	// Memory per connection: (with every client connected − before the
	// first), each sample taken after a GC and debug.FreeOSMemory.
	RSSBytesPerConn   float64 `json:"rss_bytes_per_conn"`
	HeapBytesPerConn  float64 `json:"heap_bytes_per_conn"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn"`
	// The same at the window's end, under traffic, without a GC.
	RSSBytesPerConnLoaded  float64 `json:"rss_bytes_per_conn_loaded"`
	HeapBytesPerConnLoaded float64 `json:"heap_bytes_per_conn_loaded"`
	// KernelSocketBytesPerConn is the kernel's TCP socket memory
	// (/proc/net/sockstat, machine-wide, so both ends of each connection
	// when the clients share the machine) with every client connected
	// less before, ÷ clients.
	KernelSocketBytesPerConn float64 `json:"kernel_socket_bytes_per_conn"`
	SlowDisconnects          uint64  `json:"slow_disconnects"`
	Stalls                   uint64  `json:"stalls"`
}

// Client is the load generator's cost.
type Client struct {
	CPUUsPerEvent     float64 `json:"cpu_us_per_event"`
	CPUUs             float64 `json:"cpu_us"`
	IdleCPUUsPerConnS float64 `json:"idle_cpu_us_per_conn_s"` // the load generator's idle cost per connection
	// CPUUtilisation is CPU time ÷ (wall time × CPUs available to the load
	// generator); near 1 means the clients could not keep up.
	CPUUtilisation float64 `json:"cpu_utilisation"`
}

// Emulator is the network emulator process's CPU over the window.
type Emulator struct {
	CPUUs float64 `json:"cpu_us"`
	// CPUUtilisation is its CPU ÷ wall time: of one core (it is one
	// process; above 0.8 it may have been the bottleneck).
	CPUUtilisation float64 `json:"cpu_utilisation"`
}

// Publisher is how well the server kept its schedule.
type Publisher struct {
	Published uint64 `json:"published"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	LagP50Ns  int64  `json:"lag_p50_ns"`
	LagP99Ns  int64  `json:"lag_p99_ns"`
	LagMaxNs  int64  `json:"lag_max_ns"`
	Behind    uint64 `json:"behind"` // events published > 1 ms late
	// LateThresholdNs is the lateness the publisher_on_schedule check
	// judged against: max(100 µs, 5% of the cell's p50); Late counts the
	// events published later than that.
	LateThresholdNs int64  `json:"late_threshold_ns"`
	Late            uint64 `json:"late"`
}

// Check is one self-check's verdict.
type Check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Env is where the result was measured.
type Env struct {
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	CPUModel   string `json:"cpu_model"`
	Kernel     string `json:"kernel"`
	Commit     string `json:"commit"`
	Hostname   string `json:"hostname"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// Conn is the cost of connections and of requests that carry no event,
// apart from the per-event figures (docs/results.md).
type Conn struct {
	// The connect phase: from before the first client connected until
	// every one was subscribed (a forced collection at each end is in the
	// server's CPU, the same in every cell), per connection.
	ConnectUpBytesPerConn     float64 `json:"connect_up_bytes_per_conn"`
	ConnectDownBytesPerConn   float64 `json:"connect_down_bytes_per_conn"`
	ConnectServerCPUUsPerConn float64 `json:"connect_server_cpu_us_per_conn"`
	ConnectClientCPUUsPerConn float64 `json:"connect_client_cpu_us_per_conn"`

	// TLS handshakes over the whole run, as the clients saw them: bytes
	// at the socket from the dial to the client's Finished, each way, and
	// the wall time, per completed handshake.
	TLSHandshakes         uint64  `json:"tls_handshakes"`
	TLSResumed            uint64  `json:"tls_resumed"`
	TLSHandshakeFailures  uint64  `json:"tls_handshake_failures"`
	TLSHandshakeUpBytes   float64 `json:"tls_handshake_up_bytes"`
	TLSHandshakeDownBytes float64 `json:"tls_handshake_down_bytes"`
	TLSHandshakeUs        float64 `json:"tls_handshake_us"`

	// The idle interval (every client connected, nothing published): the
	// requests made and the bytes each cost, each way. For short polling
	// this is the overhead of one poll: request and response headers,
	// framing, TLS records, and the empty answer "[]".
	IdleRequests            uint64  `json:"idle_requests"`
	IdleUpBytesPerRequest   float64 `json:"idle_up_bytes_per_request"`
	IdleDownBytesPerRequest float64 `json:"idle_down_bytes_per_request"`

	// HTTP2Responses counts answers and streams that arrived over HTTP/2
	// (whole run, clients' view); HTTP2Requests the requests the server
	// saw over HTTP/2 in the window.
	HTTP2Responses uint64 `json:"http2_responses"`
	HTTP2Requests  uint64 `json:"http2_requests"`

	// ConnectRate is the rate the clients were started at in the connect
	// phase ((clients − 1) ÷ (last start − first start); 0 for one
	// client), against scenario.connect_rate; ConnectLatency is each
	// client's time from its start (the dial) to its subscription in
	// place, a distribution like latency_ns (Go clients only).
	ConnectRate    float64  `json:"connect_rate,omitempty"`
	ConnectLatency *Latency `json:"connect_latency_ns,omitempty"`
}

// Agent is one load generator's share of a run spread over agents: the
// coordinator's own share ("local") or an agent's (its address).
type Agent struct {
	Name        string `json:"name"`
	Host        string `json:"host,omitempty"`
	FirstClient int    `json:"first_client"`
	Clients     int    `json:"clients"`
	// Error is why the agent failed ("": it did not); its figures are then
	// what it returned, or none.
	Error     string `json:"error,omitempty"`
	Expected  uint64 `json:"expected"`
	Delivered uint64 `json:"delivered"`
	Lost      uint64 `json:"lost"`
	// LatencyP50Ns and LatencyP99Ns are its clients' latencies, corrected
	// by its clock offset.
	LatencyP50Ns int64 `json:"latency_p50_ns"`
	LatencyP99Ns int64 `json:"latency_p99_ns"`
	// CPUUs and CPUUtilisation are its process's CPU over the window (of
	// CPUs CPUs).
	CPUUs          float64 `json:"cpu_us"`
	CPUUtilisation float64 `json:"cpu_utilisation"`
	CPUs           int     `json:"cpus"`
	// The server's clock minus this load generator's, and the bound on
	// its error, from NTP-style exchanges with the server (GET /time);
	// ClockSamples 0: not measured, the server is on this machine's
	// loopback and the offset is 0.
	ClockOffsetNs      int64 `json:"clock_offset_ns"`
	ClockUncertaintyNs int64 `json:"clock_uncertainty_ns"`
	ClockSamples       int   `json:"clock_samples"`
	// ClockOffsetChangeNs is the offset measured again as it finished
	// minus the first (0: not measured again); the part of it the two
	// measurements' bounds do not explain is added to ClockUncertaintyNs.
	ClockOffsetChangeNs int64 `json:"clock_offset_change_ns"`
	// ClockDriftNs is how far its wall clock moved against its monotonic
	// clock between its first and last mark.
	ClockDriftNs int64 `json:"clock_drift_ns"`
	// Checks are its own self-checks: client_cpu, clients_alive,
	// histogram_range, no_loss, clock_offset, clock_stable.
	Checks map[string]Check `json:"checks"`
}
