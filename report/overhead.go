package report

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"pushbench/results"
	"pushbench/transport"
	"pushbench/webhttp"
)

// The overhead report puts measured bytes where Kaazing's classic table
// ("A Quantum Leap in Scalability for the Web", websocket.org) put
// assumptions: 871 bytes of HTTP request and response headers per poll,
// 2 bytes of WebSocket framing per message, and 1,000, 10,000 and 100,000
// clients polling once a second.
const (
	// KaazingHeaderBytes is Kaazing's assumed HTTP header bytes (request
	// and response) per poll.
	KaazingHeaderBytes = 871
	// KaazingFrameBytes is Kaazing's WebSocket framing per message.
	KaazingFrameBytes = 2
	// emptyPollBody is the body of a poll answered with no event: "[]".
	emptyPollBody = 2
)

// overheadClients are Kaazing's use cases A, B and C.
var overheadClients = []int{1000, 10000, 100000}

// kaazingMbps are Kaazing's published figures for polling and for
// WebSocket at overheadClients, as printed: bits per second ÷ 2^20.
var kaazingMbps = struct{ poll, ws []string }{
	poll: []string{"6.6", "66", "665"},
	ws:   []string{"0.015", "0.153", "1.526"},
}

// mbits is a per-client byte rate at n clients in Mbit/s, 1 Mbit = 10^6
// bits.
func mbits(bytesPerS float64, n int) float64 { return bytesPerS * float64(n) * 8 / 1e6 }

// Files the report writes when a record spoke HTTP other than the
// default way (HasOverhead).
const (
	OverheadMarkdownFile = "overhead.md"
	OverheadCSVFile      = "overhead.csv"
)

// HasOverhead reports whether a broadcast record spoke HTTP other than the
// default way (browser headers, TLS, HTTP/2, a cookie, another response
// profile, compression): Report then writes overhead.md and overhead.csv.
// Kaazing's table is clients receiving events a server broadcasts, so
// chat and game cells have no part in it.
func HasOverhead(recs []results.Record) bool {
	return slices.ContainsFunc(recs, func(r results.Record) bool {
		return workOf(r.Scenario).isBroadcast() && !httpOf(r.Scenario).options().IsDefault()
	})
}

// Overhead is the overhead report of recs: overhead.md (Kaazing's table
// with measured bytes: the overhead of one poll per way of speaking HTTP,
// and the network throughput of 1,000, 10,000 and 100,000 clients
// receiving one event a second by each transport) and overhead.csv (the
// same figures, one row per way of speaking HTTP and transport, and
// Kaazing's two rows). Every figure comes from the records; figures of a
// cell whose records are not clean are marked.
func Overhead(recs []results.Record) (markdown string, csvText string) {
	o := newOverhead(newMatrix(recs))
	return o.markdown(false), o.csv()
}

// ohKey is one way of speaking HTTP and one transport.
type ohKey struct {
	http      httpKey
	transport string
}

// ohPick is the cell the overhead report reads for one ohKey, and the
// records of it that its figures come from.
type ohPick struct {
	c     *cell
	used  []*results.Record
	clean bool     // every record used is clean
	notes []string // why records were left out or are not clean
}

// overhead is the overhead report's data.
type overhead struct {
	variants   []httpKey        // in compareHTTP order
	transports []transport.Info // the web transports the run has, in display order
	picks      map[ohKey]*ohPick
	point      coord // where most picks were measured (HTTP zeroed)
}

func newOverhead(m *matrix) *overhead {
	o := &overhead{picks: map[ohKey]*ohPick{}}
	best := map[ohKey]*cell{}
	for _, c := range m.cells {
		if c.isFloor() || !c.at.Work.isBroadcast() {
			continue
		}
		k := ohKey{c.at.HTTP, c.v.Transport}
		if b := best[k]; b == nil || overheadPreference(c, b) < 0 {
			best[k] = c
		}
	}
	points := map[coord]int{}
	for k, c := range best {
		p := &ohPick{c: c}
		p.used, p.clean, p.notes = pickRecords(c)
		o.picks[k] = p
		if !slices.Contains(o.variants, k.http) {
			o.variants = append(o.variants, k.http)
		}
		points[withoutHTTP(c.at)]++
	}
	slices.SortFunc(o.variants, compareHTTP)
	for _, t := range transport.All() {
		if t.Floor {
			continue
		}
		if slices.ContainsFunc(o.variants, func(h httpKey) bool { return o.picks[ohKey{h, t.Name}] != nil }) {
			o.transports = append(o.transports, t)
		}
	}
	if len(points) > 0 {
		keys := make([]coord, 0, len(points))
		for p := range points {
			keys = append(keys, p)
		}
		o.point = slices.MinFunc(keys, func(a, b coord) int {
			if c := cmp.Compare(points[b], points[a]); c != 0 {
				return c
			}
			return compareCoords(a, b)
		})
	}
	return o
}

// withoutHTTP is at with the HTTP options at their defaults: the point of
// the matrix alone.
func withoutHTTP(at coord) coord {
	at.HTTP = defaultHTTP
	return at
}

// overheadPreference orders the cells of one transport spoken one way,
// the one the report reads first: short polling once a second, then the
// event rate closest to one a second (Kaazing's case), the loopback (then
// the shortest RTT), the smallest payload (the least event in the bytes)
// and the most clients.
func overheadPreference(a, b *cell) int {
	logDist := func(v float64) float64 {
		if !(v > 0) {
			return math.Inf(1)
		}
		return math.Abs(math.Log(v))
	}
	if c := cmp.Compare(logDist(time.Duration(a.v.IntervalNs).Seconds()), logDist(time.Duration(b.v.IntervalNs).Seconds())); c != 0 {
		return c
	}
	if c := cmp.Compare(logDist(a.at.Rate), logDist(b.at.Rate)); c != 0 {
		return c
	}
	if c := cmpBool(a.at.Network != "", b.at.Network != ""); c != 0 {
		return c
	}
	if c := cmp.Compare(a.at.RTTNs, b.at.RTTNs); c != 0 {
		return c
	}
	if c := cmp.Compare(a.at.Payload, b.at.Payload); c != 0 {
		return c
	}
	if c := cmp.Compare(b.at.Clients, a.at.Clients); c != 0 {
		return c
	}
	if c := compareCoords(a.at, b.at); c != 0 {
		return c
	}
	return compareVariants(a.v, b.v)
}

// pickRecords returns the records of c the overhead figures come from:
// the clean ones (status ok, no problem: issues), or, when there is none,
// every one that measured something, marked not clean. notes says what
// was left out or why the figures are not clean.
func pickRecords(c *cell) (used []*results.Record, clean bool, notes []string) {
	var good, measured []*results.Record
	var problems []string
	for _, r := range c.recs {
		is := issues(r)
		if results.StatusOf(r) == results.StatusOK && !hasBad(is) {
			good = append(good, r)
			continue
		}
		if results.StatusOf(r) != results.StatusError {
			measured = append(measured, r)
		}
		why := issueText(is)
		if why == "" {
			why = "status " + results.StatusOf(r)
		}
		if !slices.Contains(problems, why) {
			problems = append(problems, why)
		}
	}
	switch {
	case len(good) > 0 && len(good) < len(c.recs):
		return good, true, []string{fmt.Sprintf("%d of %d records left out: %s", len(c.recs)-len(good), len(c.recs), strings.Join(problems, "; "))}
	case len(good) > 0:
		return good, true, nil
	case len(measured) > 0:
		return measured, false, []string{"not clean: " + strings.Join(problems, "; ")}
	}
	return nil, false, []string{strings.Join(problems, "; ")}
}

// medianWhere is the median of f over the records that keep (nil: all);
// NaN when none does.
func medianWhere(recs []*results.Record, keep func(*results.Record) bool, f func(*results.Record) float64) float64 {
	var vs []float64
	for _, r := range recs {
		if keep == nil || keep(r) {
			vs = append(vs, f(r))
		}
	}
	return median(vs)
}

// pollFigures are one short-poll cell's idle polls: bytes up and down per
// poll (NaN: no idle poll measured) and how many polls they rest on.
func (p *ohPick) pollFigures() (up, down float64, polls uint64) {
	idle := func(r *results.Record) bool { return r.Conn.IdleRequests > 0 }
	up = medianWhere(p.used, idle, func(r *results.Record) float64 { return r.Conn.IdleUpBytesPerRequest })
	down = medianWhere(p.used, idle, func(r *results.Record) float64 { return r.Conn.IdleDownBytesPerRequest })
	for _, r := range p.used {
		polls += r.Conn.IdleRequests
	}
	return up, down, polls
}

// handshake is a cell's TLS handshakes: bytes up and down and µs per
// completed handshake (NaN: none), how many, how many resumed.
func (p *ohPick) handshake() (up, down, us float64, n, resumed uint64) {
	done := func(r *results.Record) bool { return r.Conn.TLSHandshakes > 0 }
	up = medianWhere(p.used, done, func(r *results.Record) float64 { return r.Conn.TLSHandshakeUpBytes })
	down = medianWhere(p.used, done, func(r *results.Record) float64 { return r.Conn.TLSHandshakeDownBytes })
	us = medianWhere(p.used, done, func(r *results.Record) float64 { return r.Conn.TLSHandshakeUs })
	for _, r := range p.used {
		n += r.Conn.TLSHandshakes
		resumed += r.Conn.TLSResumed
	}
	return up, down, us, n, resumed
}

// connectCost is what a cell's connect phase cost per connection.
type connectCost struct{ up, down, serverUs, clientUs, rss float64 }

// connect is the median over the used records of the connect phase's
// figures per connection and of the server's memory per connection.
func (p *ohPick) connect() connectCost {
	f := func(get func(r *results.Record) float64) float64 { return medianWhere(p.used, nil, get) }
	return connectCost{
		up:       f(func(r *results.Record) float64 { return r.Conn.ConnectUpBytesPerConn }),
		down:     f(func(r *results.Record) float64 { return r.Conn.ConnectDownBytesPerConn }),
		serverUs: f(func(r *results.Record) float64 { return r.Conn.ConnectServerCPUUsPerConn }),
		clientUs: f(func(r *results.Record) float64 { return r.Conn.ConnectClientCPUUsPerConn }),
		rss:      f(func(r *results.Record) float64 { return r.Server.RSSBytesPerConn }),
	}
}

// perClientS is the bytes down + up a client costs per second receiving
// one event a second: for short polling, one poll a second — the window's
// wire bytes per client-second × the poll interval (a poll and what it
// carries); for the others the wire bytes per delivered event × 1 event/s.
func (p *ohPick) perClientS() float64 {
	if transport.HasInterval(p.c.v.Transport) {
		iv := time.Duration(p.c.v.IntervalNs).Seconds()
		return medianWhere(p.used, nil, func(r *results.Record) float64 {
			return (r.Wire.DownBytesPerClientSec + r.Wire.UpBytesPerClientSec) * iv
		})
	}
	return medianWhere(p.used, nil, func(r *results.Record) float64 { return r.Wire.DownBytesPerEvent + r.Wire.UpBytesPerEvent })
}

// http2Missing reports a cell that asked for HTTP/2 where its transport
// speaks it but had no answer over it.
func (p *ohPick) http2Missing() bool {
	if p.c.at.HTTP.HTTP != webhttp.HTTP2 || !webhttp.UsesHTTP2(p.c.v.Transport) || len(p.used) == 0 {
		return false
	}
	for _, r := range p.used {
		if r.Conn.HTTP2Responses > 0 {
			return false
		}
	}
	return true
}

// marked reports whether the pick's figures need a warning mark.
func (p *ohPick) marked() bool { return !p.clean || p.http2Missing() }

// allNotes is what the notes column says about p: problems, and where it
// was measured when that is not the report's common point.
func (o *overhead) allNotes(p *ohPick) []string {
	notes := slices.Clone(p.notes)
	if p.http2Missing() {
		notes = append(notes, "no answer came over HTTP/2 (conn.http2_responses is 0)")
	}
	if withoutHTTP(p.c.at) != o.point {
		notes = append(notes, "measured at "+describe(withoutHTTP(p.c.at)))
	}
	if iv := time.Duration(p.c.v.IntervalNs); transport.HasInterval(p.c.v.Transport) && iv != time.Second {
		notes = append(notes, "polling every "+fmtDuration(float64(iv))+": bytes per poll = bytes per client-second × "+fmtDuration(float64(iv)))
	}
	return notes
}

// fmtOh writes a measured figure with four significant digits, "—" for
// none.
func fmtOh(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmtSigN(v, 4)
}

// markIf adds the mark of a figure that is not clean.
func markIf(s string, mark bool) string {
	if mark && s != "—" {
		return s + " ⚠"
	}
	return s
}

// commaInt writes n with commas between groups of three digits: 1,000.
func commaInt(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// markdown writes overhead.md; for the README (readme), without its title
// and with bold captions instead of headings.
func (o *overhead) markdown(readme bool) string {
	var b strings.Builder
	heading := func(title, text string) {
		if readme {
			fmt.Fprintf(&b, "**%s.** %s\n\n", title, text)
		} else {
			fmt.Fprintf(&b, "## %s\n\n%s\n\n", title, text)
		}
	}
	if !readme {
		b.WriteString("# Overhead per request: Kaazing's table, measured\n\n")
	}
	fmt.Fprintf(&b, "Kaazing's \"A Quantum Leap in Scalability for the Web\" (websocket.org) compared polling with WebSocket by assuming "+
		"%d B of HTTP request and response headers per poll and %d B of WebSocket framing per message: for 1,000, 10,000 and 100,000 "+
		"clients polling once a second it gave %s, %s and %s Mbps for polling against %s, %s and %s Mbps for WebSocket. "+
		"Here the same tables come from this run's records.\n\n",
		KaazingHeaderBytes, KaazingFrameBytes, kaazingMbps.poll[0], kaazingMbps.poll[1], kaazingMbps.poll[2],
		kaazingMbps.ws[0], kaazingMbps.ws[1], kaazingMbps.ws[2])
	if len(o.picks) == 0 {
		b.WriteString("No cell speaks HTTP here: nothing to measure.\n")
		return b.String()
	}
	fmt.Fprintf(&b, "Bytes are counted at the clients' sockets (below TLS where it is on): every header, frame and TLS record. "+
		"Per-client figures are **measured**, at %s; the columns for 1,000, 10,000 and 100,000 clients are those figures **scaled up** "+
		"linearly (× N), not measured at that scale. A figure marked ⚠ comes from a cell whose records are not clean (the notes say why).\n\n",
		describe(o.point))

	// Table 1: overhead per poll.
	heading("Overhead per poll", fmt.Sprintf("Short polling with nothing to deliver: in each cell's idle interval (every client connected, nothing "+
		"published) every poll is answered `[]`, so its bytes are the overhead of one poll — request and response headers, framing, TLS "+
		"records — plus the %d-byte body `[]` (gzip-encoded, and so a little larger, where compression is on). Kaazing assumed %d B of headers.",
		emptyPollBody, KaazingHeaderBytes))
	b.WriteString("| HTTP | per poll, up + down (measured) | without the 2 B body | Kaazing | without the body ÷ Kaazing | TLS handshake per connection, up + down | polls measured | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, h := range o.variants {
		p := o.picks[ohKey{h, transport.ShortPoll}]
		if p == nil {
			fmt.Fprintf(&b, "| %s | — | — | %d B | — | — | — | no short-polling cell |\n", h.label(), KaazingHeaderBytes)
			continue
		}
		up, down, polls := p.pollFigures()
		notes := o.allNotes(p)
		perPoll, without, ratio := "—", "—", "—"
		if !math.IsNaN(up) {
			total := up + down
			perPoll = markIf(fmt.Sprintf("%s + %s = %s B", fmtOh(up), fmtOh(down), fmtOh(total)), p.marked())
			without = markIf(fmtOh(total-emptyPollBody)+" B", p.marked())
			ratio = fmtRatio((total - emptyPollBody) / KaazingHeaderBytes)
		} else {
			notes = append(notes, "no idle poll measured (an idle interval of 0, or a record from before the figure existed)")
		}
		hs := "—"
		if h.TLS {
			hu, hd, us, n, resumed := p.handshake()
			if math.IsNaN(hu) {
				hs = "none completed"
			} else {
				hs = fmt.Sprintf("%s + %s = %s B, %s", fmtOh(hu), fmtOh(hd), fmtOh(hu+hd), fmtDuration(us*1e3))
				if resumed > 0 {
					hs += fmt.Sprintf(" (%d of %d resumed)", resumed, n)
				}
				hs = markIf(hs, p.marked())
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d B | %s | %s | %s | %s |\n", h.label(), perPoll, without, KaazingHeaderBytes, ratio, hs,
			fmtSig(float64(polls)), mdCell(strings.Join(notes, "; ")))
	}
	b.WriteString("\n")

	// Table 2: throughput at 1k, 10k and 100k clients.
	heading("Network throughput, one event per second per client", fmt.Sprintf("Kaazing's use cases A, B and C with measured bytes. Short polling "+
		"polls once a second: its figure is the window's wire bytes down + up per client-second, a poll and the event it carries. Long polling, SSE "+
		"and WebSocket: wire bytes down + up per delivered event × 1 event/s. Measured figures include the event itself (%d B of payload), which "+
		"Kaazing's %d B and %d B did not. 1 Mbit = 10^6 bits here; Kaazing divided by 2^20, so their %s Mbps is %s Mbit/s in these units "+
		"(their figures in brackets).",
		o.point.Payload, KaazingHeaderBytes, KaazingFrameBytes, kaazingMbps.poll[0], fmtSigN(mbits(KaazingHeaderBytes, overheadClients[0]), 4)))
	b.WriteString("| HTTP | transport | per client, measured (B/s) |")
	for _, n := range overheadClients {
		fmt.Fprintf(&b, " %s clients, Mbit/s (scaled ×%s) |", commaInt(n), commaInt(n))
	}
	b.WriteString(" notes |\n|---|---|---|" + strings.Repeat("---|", len(overheadClients)) + "---|\n")
	kaazing := func(what string, perClient float64, published []string) {
		fmt.Fprintf(&b, "| Kaazing (assumed) | %s | %d |", what, int(perClient))
		for i, n := range overheadClients {
			fmt.Fprintf(&b, " %s (%s) |", fmtSigN(mbits(perClient, n), 4), published[i])
		}
		b.WriteString(" headers or framing only, no payload |\n")
	}
	kaazing(fmt.Sprintf("polling, %d B of headers", KaazingHeaderBytes), KaazingHeaderBytes, kaazingMbps.poll)
	kaazing(fmt.Sprintf("WebSocket, %d B frame", KaazingFrameBytes), KaazingFrameBytes, kaazingMbps.ws)
	wsOverH2 := false
	for _, h := range o.variants {
		for _, t := range o.transports {
			p := o.picks[ohKey{h, t.Name}]
			if p == nil {
				if h.HTTP == webhttp.HTTP2 && !webhttp.UsesHTTP2(t.Name) {
					wsOverH2 = true
				}
				continue
			}
			v := p.perClientS()
			fmt.Fprintf(&b, "| %s | %s | %s |", h.label(), p.c.v.Label(), markIf(fmtOh(v), p.marked()))
			for _, n := range overheadClients {
				fmt.Fprintf(&b, " %s |", markIf(fmtOh(mbits(v, n)), p.marked()))
			}
			fmt.Fprintf(&b, " %s |\n", mdCell(strings.Join(o.allNotes(p), "; ")))
		}
	}
	if wsOverH2 {
		b.WriteString("\nWebSocket has no HTTP/2 rows: it upgrades an HTTP/1.1 connection (WebSocket over HTTP/2, RFC 8441, is out of scope), " +
			"as a browser on an HTTP/2 site does too; read its HTTP/1.1 row with the same TLS setting.\n")
	}
	b.WriteString("\n")

	// Table 3: what a connection costs, apart from the events.
	heading("Cost of a connection", "Apart from the per-event figures above: the connect phase of each cell (from before the first client "+
		"connected until every one was subscribed) per connection — bytes both ways (TCP and TLS handshakes, the first request or upgrade and "+
		"its answer), the server's and the load generator's CPU (a forced collection at each end is included, the same in every cell, so "+
		"compare rows: TLS on minus off is the handshake) — the server's memory per connection, and the TLS handshake's wall time at the "+
		"client, which includes queueing when many clients connect at once on a small machine.")
	b.WriteString("| HTTP | transport | connect bytes, up + down | server CPU per connection | client CPU per connection | server memory per connection | TLS handshake, wall | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, h := range o.variants {
		for _, t := range o.transports {
			p := o.picks[ohKey{h, t.Name}]
			if p == nil {
				continue
			}
			c := p.connect()
			hs := "—"
			if h.TLS {
				if _, _, us, _, _ := p.handshake(); !math.IsNaN(us) {
					hs = markIf(fmtDuration(us*1e3), p.marked())
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", h.label(), p.c.v.Label(),
				markIf(fmt.Sprintf("%s + %s = %s B", fmtOh(c.up), fmtOh(c.down), fmtOh(c.up+c.down)), p.marked()),
				markIf(fmtDuration(c.serverUs*1e3), p.marked()), markIf(fmtDuration(c.clientUs*1e3), p.marked()),
				markIf(fmtOh(c.rss/1024)+" KiB", p.marked()), hs, mdCell(strings.Join(o.allNotes(p), "; ")))
		}
	}
	return b.String()
}

// overheadCSVHeader names overhead.csv's columns.
var overheadCSVHeader = []string{
	"source", "http", "tls", "headers", "response_headers", "cookie_bytes", "compress", "pad",
	"transport", "interval_ns", "network", "clients", "rate", "payload",
	"records_used", "clean", "notes",
	"idle_requests", "poll_up_bytes", "poll_down_bytes", "poll_bytes", "poll_bytes_without_body",
	"tls_handshakes", "tls_resumed", "tls_handshake_up_bytes", "tls_handshake_down_bytes", "tls_handshake_us",
	"http2_responses", "bytes_per_client_s", "mbit_s_1000_clients", "mbit_s_10000_clients", "mbit_s_100000_clients",
	"connect_up_bytes_per_conn", "connect_down_bytes_per_conn", "connect_server_cpu_us_per_conn", "connect_client_cpu_us_per_conn",
	"server_rss_bytes_per_conn",
}

// csv writes overhead.csv: Kaazing's two rows (source "kaazing"), then one
// row per way of speaking HTTP and transport (source "measured"), with
// full precision; an empty field is a figure that does not apply.
func (o *overhead) csv() string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	num := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	_ = w.Write(overheadCSVHeader)
	kaazing := func(t string, perClient float64) {
		row := make([]string, len(overheadCSVHeader))
		set := func(name, v string) { row[slices.Index(overheadCSVHeader, name)] = v }
		set("source", "kaazing")
		set("transport", t)
		if t == transport.ShortPoll {
			set("poll_bytes", num(perClient))
		}
		set("bytes_per_client_s", num(perClient))
		for _, n := range overheadClients {
			set(fmt.Sprintf("mbit_s_%d_clients", n), num(mbits(perClient, n)))
		}
		_ = w.Write(row)
	}
	kaazing(transport.ShortPoll, KaazingHeaderBytes)
	kaazing(transport.WebSocket, KaazingFrameBytes)
	for _, h := range o.variants {
		for _, t := range o.transports {
			p := o.picks[ohKey{h, t.Name}]
			if p == nil {
				continue
			}
			at := p.c.at
			row := []string{"measured", h.HTTP, strconv.FormatBool(h.TLS), h.Headers, h.Response, strconv.Itoa(h.Cookie), strconv.FormatBool(h.Compress), h.Pad,
				t.Name, strconv.FormatInt(p.c.v.IntervalNs, 10), cmp.Or(at.Network, "loopback"), strconv.Itoa(at.Clients), fmtRate(at.Rate), strconv.Itoa(at.Payload),
				strconv.Itoa(len(p.used)), strconv.FormatBool(!p.marked()), strings.Join(o.allNotes(p), "; ")}
			if t.Name == transport.ShortPoll {
				up, down, polls := p.pollFigures()
				row = append(row, strconv.FormatUint(polls, 10), num(up), num(down), num(up+down), num(up+down-emptyPollBody))
			} else {
				row = append(row, "", "", "", "", "")
			}
			if h.TLS {
				hu, hd, us, n, resumed := p.handshake()
				row = append(row, strconv.FormatUint(n, 10), strconv.FormatUint(resumed, 10), num(hu), num(hd), num(us))
			} else {
				row = append(row, "", "", "", "", "")
			}
			var h2 uint64
			for _, r := range p.used {
				h2 += r.Conn.HTTP2Responses
			}
			v := p.perClientS()
			row = append(row, strconv.FormatUint(h2, 10), num(v))
			for _, n := range overheadClients {
				row = append(row, num(mbits(v, n)))
			}
			c := p.connect()
			row = append(row, num(c.up), num(c.down), num(c.serverUs), num(c.clientUs), num(c.rss))
			_ = w.Write(row)
		}
	}
	w.Flush()
	return b.String()
}
