package servers

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"pushbench/event"
)

// Stats is the JSON document served at GET /stats. Counters are cumulative
// since the server started; a harness takes the difference of two snapshots
// around its measured window.
type Stats struct {
	TimeNs    int64          `json:"time_ns"` // Unix ns when the snapshot was taken
	Head      uint64         `json:"head"`    // newest published seq of room 0
	Ring      int            `json:"ring"`    // ring capacity K (of each room)
	Publisher PublisherStats `json:"publisher"`
	Listener  ListenerStats  `json:"listener"`
	// Transports is keyed by transport name (transport.Names()).
	Transports map[string]TransportStats `json:"transports"`
	// Send counts POST /send, the upstream of the polls and SSE (its
	// requests, 4xx answers and messages; no events).
	Send TransportStats `json:"send"`

	// Rooms is the number of rooms; RoomHeads the newest seq of each,
	// room 0 first, when there are at most MaxListedRooms of them (else
	// omitted), and RoomHeadSum, RoomHeadMin and RoomHeadMax their sum
	// (the events published in all rooms), least and greatest.
	Rooms       int          `json:"rooms"`
	RoomHeads   []uint64     `json:"room_heads,omitempty"`
	RoomHeadSum uint64       `json:"room_head_sum"`
	RoomHeadMin uint64       `json:"room_head_min"`
	RoomHeadMax uint64       `json:"room_head_max"`
	Process     ProcessStats `json:"process"`
	// Kernel is this machine's kernel TCP memory: machine-wide, so with
	// the load generator on the same host it holds both ends' sockets.
	Kernel KernelStats `json:"kernel"`

	// What the server serves, so that a client can check it speaks the
	// same: TLS (with ALPN h2 and http/1.1; without TLS, h2c with prior
	// knowledge), the response header profile (webhttp.ResponseMinimal
	// or ResponseDeployment), whether it compresses for clients that
	// offer it, and the events' padding ("x" or "text").
	TLS             bool   `json:"tls"`
	ResponseHeaders string `json:"response_headers"`
	Compress        bool   `json:"compress"`
	Pad             string `json:"pad"`
	// The flood bound on upstream messages per connection
	// (Config.MaxSendRate, Config.SendBurst).
	MaxSendRate float64 `json:"max_send_rate"`
	SendBurst   int     `json:"send_burst"`
	// CORS counts requests from pages on other origins and lists the
	// allowed ones (Config.CORS; cors.go); omitted while it is all zero.
	CORS CORSStats `json:"cors,omitzero"`
	// CutEveryNs is Config.CutEvery in ns (0: streams are never cut) and
	// SSERetryMs Config.SSERetry in ms, the retry field every SSE stream
	// starts with (0: none).
	CutEveryNs int64 `json:"cut_every_ns"`
	// ControlToken says /control/* asks for a bearer token (Config.Token),
	// and ControlUnauthorized counts the requests refused for lacking it.
	ControlToken        bool   `json:"control_token"`
	ControlUnauthorized uint64 `json:"control_unauthorized"`
	SSERetryMs          int64  `json:"sse_retry_ms"`
}

// KernelStats are read from /proc/net/sockstat (zero where it is missing).
type KernelStats struct {
	TCPInUse    int64 `json:"tcp_inuse"`     // TCP sockets in use
	TCPMemBytes int64 `json:"tcp_mem_bytes"` // memory of TCP socket buffers (the "mem" pages × page size)
}

// kernelStats reads /proc/net/sockstat's TCP line:
// "TCP: inuse 5 orphan 0 tw 0 alloc 7 mem 1".
func kernelStats() KernelStats {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return KernelStats{}
	}
	return parseSockstat(string(b), int64(os.Getpagesize()))
}

func parseSockstat(text string, pageSize int64) KernelStats {
	var k KernelStats
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, "TCP: ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i += 2 {
			n, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				continue
			}
			switch f[i] {
			case "inuse":
				k.TCPInUse = n
			case "mem":
				k.TCPMemBytes = n * pageSize
			}
		}
	}
	return k
}

// ListenerStats are counted at the server's net.Listener, so they include
// every byte of HTTP headers, chunk framing and WebSocket frames.
type ListenerStats struct {
	Accepted uint64 `json:"accepted"`  // connections accepted
	Open     int64  `json:"open"`      // connections open now
	BytesIn  uint64 `json:"bytes_in"`  // read from clients
	BytesOut uint64 `json:"bytes_out"` // written to clients
}

// TransportStats are one transport's counters.
type TransportStats struct {
	Requests       uint64 `json:"requests"`        // HTTP requests handled (including rejected ones)
	HTTP2Requests  uint64 `json:"http2_requests"`  // of those, requests that came over HTTP/2 (h2 or h2c)
	BadRequests    uint64 `json:"bad_requests"`    // answered 4xx
	Active         int64  `json:"active"`          // open streams or held long polls now
	EventsSent     uint64 `json:"events_sent"`     // event deliveries written (one per event per client)
	EmptyResponses uint64 `json:"empty_responses"` // polls answered with no event
	Gaps           uint64 `json:"gaps"`            // gap notices sent (a resume point had left the ring)
	GapEvents      uint64 `json:"gap_events"`      // events named by those notices
	// SlowDisconnects counts clients cut off by the slow-consumer policy
	// (queue full, or a write that missed its deadline).
	SlowDisconnects uint64 `json:"slow_disconnects"`
	// Stalls counts publish attempts that had to wait for a slow consumer
	// (SSE: r3labs/sse/v2 blocks its whole stream on one full subscriber).
	Stalls uint64 `json:"stalls"`
	// OversizeCloses counts WebSocket connections closed with 1009 because
	// a client message exceeded the read limit (protocol.md).
	OversizeCloses uint64 `json:"oversize_closes"`
	// Cuts counts streams and connections the server ended on purpose
	// because they had been open for Config.CutEvery (SSE, WebSocket, raw
	// TCP).
	Cuts uint64 `json:"cuts"`

	// Upstream messages (chat messages, game inputs; upstream.go):
	// Upstream were taken (published or applied) and UpstreamBytes is
	// their size; UpstreamBad were refused as malformed, oversized or
	// undeliverable (POST 400/413, WebSocket close 1007/1003/1008/1009,
	// raw TCP close); UpstreamFlood were over the connection's send rate
	// (POST 429, WebSocket close 1008, raw TCP close); UpstreamRefused
	// came while no chat or game ran (POST 409; WebSocket messages and
	// TCP lines dropped).
	Upstream        uint64 `json:"upstream"`
	UpstreamBytes   uint64 `json:"upstream_bytes"`
	UpstreamBad     uint64 `json:"upstream_bad"`
	UpstreamFlood   uint64 `json:"upstream_flood"`
	UpstreamRefused uint64 `json:"upstream_refused"`
}

// ProcessStats describe the server process.
type ProcessStats struct {
	PID          int    `json:"pid"`
	CPUUserNs    int64  `json:"cpu_user_ns"`
	CPUSysNs     int64  `json:"cpu_sys_ns"`
	RSSBytes     uint64 `json:"rss_bytes"`        // resident set size from /proc/self/statm
	HeapInuse    uint64 `json:"heap_inuse"`       // runtime.MemStats.HeapInuse
	StackInuse   uint64 `json:"stack_inuse"`      // runtime.MemStats.StackInuse
	Goroutines   int    `json:"goroutines"`       // runtime.NumGoroutine
	GOMAXPROCS   int    `json:"gomaxprocs"`       // runtime.GOMAXPROCS(0)
	NumCPU       int    `json:"num_cpu"`          // runtime.NumCPU: CPUs this process may use
	GoVersion    string `json:"go_version"`       // runtime.Version
	PublisherCPU int64  `json:"publisher_cpu_ns"` // CPU of publisher threads, all runs including the running one (see PublishConfig.Spin)
}

// counters are one transport's live counters; TransportStats is their
// snapshot.
type counters struct {
	requests        atomic.Uint64
	http2Requests   atomic.Uint64
	badRequests     atomic.Uint64
	eventsSent      atomic.Uint64
	emptyResponses  atomic.Uint64
	gaps            atomic.Uint64
	gapEvents       atomic.Uint64
	slowDisconnects atomic.Uint64
	stalls          atomic.Uint64
	oversizeCloses  atomic.Uint64
	cuts            atomic.Uint64
	active          atomic.Int64

	upstream        atomic.Uint64
	upstreamBytes   atomic.Uint64
	upstreamBad     atomic.Uint64
	upstreamFlood   atomic.Uint64
	upstreamRefused atomic.Uint64
}

func (c *counters) gap(g event.Gap) {
	c.gaps.Add(1)
	c.gapEvents.Add(g.Len())
}

func (c *counters) snapshot() TransportStats {
	return TransportStats{
		Requests:        c.requests.Load(),
		HTTP2Requests:   c.http2Requests.Load(),
		BadRequests:     c.badRequests.Load(),
		Active:          c.active.Load(),
		EventsSent:      c.eventsSent.Load(),
		EmptyResponses:  c.emptyResponses.Load(),
		Gaps:            c.gaps.Load(),
		GapEvents:       c.gapEvents.Load(),
		SlowDisconnects: c.slowDisconnects.Load(),
		Stalls:          c.stalls.Load(),
		OversizeCloses:  c.oversizeCloses.Load(),
		Cuts:            c.cuts.Load(),
		Upstream:        c.upstream.Load(),
		UpstreamBytes:   c.upstreamBytes.Load(),
		UpstreamBad:     c.upstreamBad.Load(),
		UpstreamFlood:   c.upstreamFlood.Load(),
		UpstreamRefused: c.upstreamRefused.Load(),
	}
}

// Stats returns a snapshot of every counter, the publisher and the process.
func (s *Server) Stats() Stats {
	s.pubMu.Lock()
	s.accountPublisherCPU()
	pubCPU := s.pubCPU
	s.pubMu.Unlock()

	st := Stats{
		TimeNs:     time.Now().UnixNano(),
		Head:       s.hub.Head(),
		Ring:       s.hub.Cap(),
		Publisher:  s.pub.Stats(),
		Listener:   s.listener.snapshot(),
		Transports: make(map[string]TransportStats, len(s.transports)),
		Process:    processStats(),
		Kernel:     kernelStats(),

		TLS:                 s.cfg.TLS != nil,
		ResponseHeaders:     s.cfg.Response,
		Compress:            s.cfg.Compress,
		Pad:                 s.cfg.pad().String(),
		ControlToken:        s.cfg.Token != "",
		ControlUnauthorized: s.unauthorized.Load(),
		MaxSendRate:         s.cfg.MaxSendRate,
		SendBurst:           s.cfg.SendBurst,
		Send:                s.send.snapshot(),
		CORS:                s.corsStats(),
		CutEveryNs:          int64(s.cfg.CutEvery),
		SSERetryMs:          s.cfg.SSERetry.Milliseconds(),
	}
	for _, t := range s.transports {
		st.Transports[t.name] = t.counters().snapshot()
	}
	s.roomHeads(&st)
	if st.Publisher.Running {
		// The running publisher's CPU so far, read live, so that two
		// snapshots bracket exactly the publisher CPU between them.
		pubCPU += st.Publisher.ThreadCPU
	}
	st.Process.PublisherCPU = int64(pubCPU)
	return st
}

func processStats() ProcessStats {
	user, sys := ProcessCPU()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ProcessStats{
		PID:        os.Getpid(),
		CPUUserNs:  int64(user),
		CPUSysNs:   int64(sys),
		RSSBytes:   rss(),
		HeapInuse:  ms.HeapInuse,
		StackInuse: ms.StackInuse,
		Goroutines: runtime.NumGoroutine(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		GoVersion:  runtime.Version(),
	}
}

// rss returns the resident set size from /proc/self/statm (0 where there is
// no procfs).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
