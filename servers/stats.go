package servers

// Stats is the JSON document served at GET /stats. Counters are cumulative
// since the server started; a harness takes the difference of two snapshots
// around its measured window.
type Stats struct {
	TimeNs    int64          `json:"time_ns"` // Unix ns when the snapshot was taken
	Head      uint64         `json:"head"`    // newest published seq
	Ring      int            `json:"ring"`    // ring capacity K
	Publisher PublisherStats `json:"publisher"`
	Listener  ListenerStats  `json:"listener"`
	// Transports is keyed by transport name: shortpoll, longpoll, sse, ws.
	Transports map[string]TransportStats `json:"transports"`
	Process    ProcessStats              `json:"process"`
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
