package report

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pushbench/results"
	"pushbench/transport"
)

// upFigures are a hand-made chat or game cell's round figures.
type upFigures struct {
	transport        string
	p50, p99         float64 // ms: send → receive (chat) or snapshot latency (game)
	upBytes, reqs    float64 // per message sent
	inP50, inP99     float64 // ms, game input latency
	sendLag99        float64 // µs
	downPerDelivered float64
}

// chatTable: every transport at one send rate, browser headers, with
// WebSocket paying its masked frame (128 B message + 25 B) and the HTTP
// transports a POST per message (short polling its polls too).
var chatTable = []upFigures{
	{transport: "shortpoll", p50: 520, p99: 990, upBytes: 1120, reqs: 1, sendLag99: 90, downPerDelivered: 300},
	{transport: "longpoll", p50: 3, p99: 9, upBytes: 995, reqs: 1, sendLag99: 80, downPerDelivered: 250},
	{transport: "sse", p50: 2.5, p99: 7, upBytes: 990, reqs: 1, sendLag99: 80, downPerDelivered: 160},
	{transport: "ws", p50: 1.2, p99: 4, upBytes: 153, reqs: 0, sendLag99: 40, downPerDelivered: 140},
	{transport: "tcp", p50: 1, p99: 3, upBytes: 140, reqs: 0, sendLag99: 30, downPerDelivered: 135},
}

// gameTable: input latency at 20 ticks/s is half a tick (25 ms) plus the
// way up and the snapshot's delivery.
var gameTable = []upFigures{
	{transport: "shortpoll", p50: 500, p99: 990, upBytes: 900, reqs: 1, inP50: 525, inP99: 990, sendLag99: 90, downPerDelivered: 700},
	{transport: "longpoll", p50: 4, p99: 12, upBytes: 880, reqs: 1, inP50: 31, inP99: 60, sendLag99: 80, downPerDelivered: 600},
	{transport: "sse", p50: 2, p99: 8, upBytes: 870, reqs: 1, inP50: 28, inP99: 50, sendLag99: 80, downPerDelivered: 540},
	{transport: "ws", p50: 1.5, p99: 5, upBytes: 85, reqs: 0, inP50: 27, inP99: 49, sendLag99: 40, downPerDelivered: 520},
}

// upRecord builds a clean record of a chat (send rate rate) or game (tick
// rate, an input per tick) cell: 100 clients in rooms of 10, a 100 s
// window, browser headers.
func upRecord(workload string, rate float64, f upFigures) results.Record {
	const clients, room, window = 100, 10, 100.0
	s := results.Scenario{Transport: f.transport, Clients: clients, DurationNs: int64(100 * time.Second), Schedule: "constant",
		Workload: workload, Room: room, Headers: "browser", ResponseHeaders: "deployment"}
	if transport.HasInterval(f.transport) {
		s.IntervalNs = int64(time.Second)
	}
	var sent, events, expected uint64
	switch workload {
	case workloadChat:
		s.SendRate, s.Rate, s.Payload = rate, clients*rate, 128
		sent = uint64(clients * rate * window)
		events, expected = sent, sent*room
	case workloadGame:
		s.Tick, s.InputRate, s.Rate, s.Payload = rate, rate, rate, 512
		sent = uint64(clients * rate * window)
		events = uint64(rate*window) * clients / room
		expected = uint64(rate*window) * clients
	}
	ms := func(v float64) int64 { return int64(v * 1e6) }
	r := results.Record{
		Schema: results.Schema, Scenario: s, Status: results.StatusOK,
		Latency: results.Latency{P50: ms(f.p50), P90: ms(f.p99), P99: ms(f.p99), P999: ms(f.p99), Max: ms(f.p99), Count: int64(expected)},
		Events:  events, Expected: expected, Delivered: expected,
		Wire: results.Wire{DownBytesPerEvent: f.downPerDelivered, UpBytesPerMessage: f.upBytes},
		Sent: sent, RequestsPerMessage: f.reqs, SendLagP50Ns: int64(f.sendLag99 * 500), SendLagP99Ns: int64(f.sendLag99 * 1e3),
		Checks: map[string]results.Check{"no_loss": {OK: true}, "sends_ok": {OK: true}},
	}
	if workload == workloadGame {
		r.InputLatency = &results.Latency{P50: ms(f.inP50), P99: ms(f.inP99), Max: ms(f.inP99), Count: int64(sent)}
	}
	return r
}

// chatRecords are chatTable at 1 message/s per client, and WebSocket and
// short polling at 0.2 and 5 too (up bytes per message: short polling's
// polls spread over fewer messages as they come faster).
func chatRecords() []results.Record {
	var recs []results.Record
	for _, f := range chatTable {
		recs = append(recs, upRecord(workloadChat, 1, f))
	}
	for _, rate := range []float64{0.2, 5} {
		for _, f := range chatTable {
			if f.transport == "ws" || f.transport == "shortpoll" {
				f.p50, f.p99 = f.p50*rate, f.p99*rate
				if f.transport == "shortpoll" {
					f.upBytes = 990 + 130/rate
				}
				recs = append(recs, upRecord(workloadChat, rate, f))
			}
		}
	}
	return recs
}

func gameRecords() []results.Record {
	var recs []results.Record
	for _, tick := range []float64{10, 20, 60} {
		for _, f := range gameTable {
			half := 1e3 / (2 * tick)
			f.inP50, f.inP99 = f.inP50-25+half, f.inP99-25+half
			recs = append(recs, upRecord(workloadGame, tick, f))
		}
	}
	return recs
}

// TestCellNameWorkload: the workload joins names, file stems and the
// one-line summary only when it is not a broadcast, so a record from
// before workloads existed and one that says "broadcast" keep the old
// names.
func TestCellNameWorkload(t *testing.T) {
	t.Parallel()
	base := results.Scenario{Transport: "ws", Clients: 100, Rate: 100, Payload: 128, DurationNs: int64(10 * time.Second)}
	with := func(f func(s *results.Scenario)) results.Scenario {
		s := base
		f(&s)
		return s
	}
	cases := []struct {
		what             string
		s                results.Scenario
		name, stem, line string
	}{
		{"before workloads existed", base,
			"transport=ws/clients=100/rate=100/payload=128", "ws-c100-r100-p128", "ws c=100 r=100/s P=128 10s:"},
		{"broadcast stated, with the defaults of the others", with(func(s *results.Scenario) {
			s.Workload, s.Room, s.SendRate, s.Tick, s.InputRate = "broadcast", 10, 1, 20, 20
		}), "transport=ws/clients=100/rate=100/payload=128", "ws-c100-r100-p128", "ws c=100 r=100/s P=128 10s:"},
		{"chat", with(func(s *results.Scenario) { s.Workload, s.Room, s.SendRate = "chat", 10, 1 }),
			"transport=ws/clients=100/rate=100/payload=128/workload=chat/room=10/send-rate=1", "ws-c100-r100-p128-chat-r10-s1",
			"ws c=100 r=100/s P=128 10s workload=chat/room=10/send-rate=1:"},
		{"chat at 0.2 with browser headers", with(func(s *results.Scenario) {
			s.Transport, s.IntervalNs, s.Rate, s.Workload, s.Room, s.SendRate, s.Headers = "shortpoll", int64(time.Second), 20, "chat", 10, 0.2, "browser"
		}), "transport=shortpoll-1s/clients=100/rate=20/payload=128/workload=chat/room=10/send-rate=0.2/headers=browser",
			"shortpoll-1s-c100-r20-p128-chat-r10-s0.2-br",
			"shortpoll-1s c=100 r=20/s P=128 10s workload=chat/room=10/send-rate=0.2 headers=browser:"},
		{"game", with(func(s *results.Scenario) {
			s.Rate, s.Payload, s.Workload, s.Room, s.Tick, s.InputRate = 20, 512, "game", 10, 20, 20
		}), "transport=ws/clients=100/rate=20/payload=512/workload=game/room=10/tick=20/input-rate=20", "ws-c100-r20-p512-game-r10-t20-i20",
			"ws c=100 r=20/s P=512 10s workload=game/room=10/tick=20/input-rate=20:"},
	}
	for _, c := range cases {
		if got := CellName(c.s); got != c.name {
			t.Errorf("%s: CellName = %q, want %q", c.what, got, c.name)
		}
		if got := cellFileStem(c.s); got != c.stem {
			t.Errorf("%s: cellFileStem = %q, want %q", c.what, got, c.stem)
		}
		if got := Line(&results.Record{Scenario: c.s}); !strings.HasPrefix(got, c.line) {
			t.Errorf("%s: Line = %q, want it to start %q", c.what, got, c.line)
		}
	}
}

// TestWorkloadsKeptApart: a broadcast, a chat and a game cell of one
// transport, clients and payload are three cells everywhere: the matrix,
// the table (with a workload column and rates in their units), bench.txt
// (upstream units only on chat and game lines, input latency only on the
// game's), the one-line summary.
func TestWorkloadsKeptApart(t *testing.T) {
	t.Parallel()
	bc := upRecord(workloadChat, 1, chatTable[3])
	bc.Scenario.Workload, bc.Scenario.Room, bc.Scenario.SendRate = "", 0, 0
	bc.Sent, bc.RequestsPerMessage, bc.Wire.UpBytesPerMessage, bc.SendLagP50Ns, bc.SendLagP99Ns = 0, 0, 0, 0, 0
	bc.Scenario.Rate = 1 // one event a second: the chat's send rate, as a coordinate
	chat := upRecord(workloadChat, 1, chatTable[3])
	game := upRecord(workloadGame, 20, gameTable[3])
	game.Scenario.Payload = 128
	recs := []results.Record{game, chat, bc}
	m := newMatrix(recs)
	if len(m.cells) != 3 {
		t.Fatalf("%d cells, want 3 (broadcast, chat, game)", len(m.cells))
	}
	for i, want := range []string{"", workloadChat, workloadGame} {
		if got := m.cells[i].at.Work.Kind; got != want {
			t.Errorf("cell %d is %q, want %q (broadcast, chat, game)", i, got, want)
		}
	}
	if m.head.Work.Kind != "" {
		t.Errorf("headline workload %q: a tie goes to broadcast", m.head.Work.Kind)
	}
	h := header(m.hasNetworks(), m.hasHTTPVariants(), m.hasWorkloads())
	for _, col := range []string{"workload", "rate", "sent", "up B/msg", "req/msg", "send lag p99", "input p50", "input p99"} {
		if !slices.Contains(h, col) {
			t.Errorf("header %v lacks %q", h, col)
		}
	}
	rs := rows(m)
	get := func(r row, col string) string { return r.cells()[slices.Index(h, col)] }
	wants := []map[string]string{
		{"workload": "broadcast", "rate": "1 ev/s", "sent": "", "up B/msg": "", "input p50": ""},
		{"workload": "chat, rooms of 10", "rate": "1 msg/s per client", "sent": "10,000", "up B/msg": "153", "req/msg": "0", "send lag p99": "40 µs", "input p50": ""},
		{"workload": "game, rooms of 10, 20 inputs/s", "rate": "20 ticks/s", "sent": "200,000", "up B/msg": "85", "input p50": "27 ms", "input p99": "49 ms"},
	}
	for i, want := range wants {
		for col, v := range want {
			if got := get(rs[i], col); got != v {
				t.Errorf("row %d, %s = %q, want %q", i, col, got, v)
			}
		}
	}

	var buf bytes.Buffer
	if err := WriteBenchText(&buf, recs); err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(buf.String(), "\n") {
		if name, _, ok := strings.Cut(l, " \t "); ok && strings.HasPrefix(name, "BenchmarkCompare/") {
			lines[strings.TrimPrefix(name, "BenchmarkCompare/")] = l
		}
	}
	upUnits := []string{" sent-msgs", " up-B/msg", " req/msg", " send-lag-p99-ns"}
	inUnits := []string{" input-p50-ns", " input-p99-ns"}
	for name, want := range map[string]struct{ up, in bool }{
		"transport=ws/clients=100/rate=1/payload=128/headers=browser":                                              {false, false},
		"transport=ws/clients=100/rate=100/payload=128/workload=chat/room=10/send-rate=1/headers=browser":          {true, false},
		"transport=ws/clients=100/rate=20/payload=128/workload=game/room=10/tick=20/input-rate=20/headers=browser": {true, true},
	} {
		l, ok := lines[name]
		if !ok {
			t.Errorf("bench.txt has no line %s:\n%s", name, buf.String())
			continue
		}
		for _, u := range upUnits {
			if strings.Contains(l, u) != want.up {
				t.Errorf("%s: unit%s present = %v, want %v", name, u, !want.up, want.up)
			}
		}
		for _, u := range inUnits {
			if strings.Contains(l, u) != want.in {
				t.Errorf("%s: unit%s present = %v, want %v", name, u, !want.in, want.in)
			}
		}
	}
	if l := lines["transport=ws/clients=100/rate=20/payload=128/workload=game/room=10/tick=20/input-rate=20/headers=browser"]; !strings.Contains(l, " 27000000 input-p50-ns \t 49000000 input-p99-ns") ||
		!strings.Contains(l, " 200000 sent-msgs \t 85 up-B/msg \t 0 req/msg \t 40000 send-lag-p99-ns") {
		t.Errorf("game line's upstream figures: %s", l)
	}

	// Input latency's p99 rests on the inputs acknowledged: with fewer
	// than 100 it is the bound it is.
	few := game
	few.InputLatency = &results.Latency{P50: 27e6, P99: 40e6, Max: 44e6, Count: 50}
	if got := metricByUnit("input-p99-ns").show(&few); got != "≤ 44 ms (max, n=50)" {
		t.Errorf("input p99 over 50 inputs = %q, want the bound", got)
	}
	if got := (&cell{recs: []*results.Record{&few, &few}}).show(metricByUnit("input-p99-ns")); got != "≤ 44 ms (max, n=100 over 2 repeats)" {
		t.Errorf("input p99 over two repeats of 50 inputs = %q, want the bound", got)
	}

	if got := Line(&chat); !strings.Contains(got, "sent 10,000, upstream 153 B/msg, upstream requests 0/msg, send lag p99 40 µs |") {
		t.Errorf("chat Line = %q, want its upstream figures", got)
	}
	if got := Line(&game); !strings.Contains(got, "input p50 27 ms, input p99 49 ms |") {
		t.Errorf("game Line = %q, want its input latency", got)
	}
	if got := Line(&bc); strings.Contains(got, "sent") || strings.Contains(got, "input") || strings.Contains(got, "B/msg") {
		t.Errorf("broadcast Line = %q: no upstream figures", got)
	}
}

// TestWorkloadHeadline: a chat run's headline is the middle send rate; a
// game's the middle tick with its inputs, and a sweep of ticks with an
// input per tick is one line along the rate axis.
func TestWorkloadHeadline(t *testing.T) {
	t.Parallel()
	m := newMatrix(chatRecords())
	if want := (coord{Work: workKey{Kind: workloadChat, Room: 10}, Clients: 100, Rate: 1, Payload: 128, HTTP: m.cells[0].at.HTTP}); m.head != want {
		t.Errorf("chat headline %+v, want %+v", m.head, want)
	}
	if got := describe(m.head); got != "chat in rooms of 10, 100 clients, 1 message/s per client, 128 B messages, HTTP/1.1, browser headers" {
		t.Errorf("describe(chat headline) = %q", got)
	}
	m = newMatrix(gameRecords())
	if want := (coord{Work: workKey{Kind: workloadGame, Room: 10, InputRate: 20}, Clients: 100, Rate: 20, Payload: 512, HTTP: m.cells[0].at.HTTP}); m.head != want {
		t.Errorf("game headline %+v, want %+v", m.head, want)
	}
	at, cells := m.slice(dimRate, nil)
	if got := distinct(cells, dimRate); !slices.Equal(got, []float64{10, 20, 60}) {
		t.Errorf("the rate slice has ticks %v, want 10, 20, 60", got)
	}
	if got := describe(at, dimRate); got != "game in rooms of 10, an input per tick, 100 clients, 512 B snapshots, HTTP/1.1, browser headers" {
		t.Errorf("describe(game slice) = %q", got)
	}
}

// TestWorkloadCharts: the chat and game charts exist only for runs with
// such cells, draw, and are on index.html with their captions.
func TestWorkloadCharts(t *testing.T) {
	t.Parallel()
	workCharts := []string{"chat-latency", "upstream-per-message", "game-input-latency"}
	cases := []struct {
		what string
		recs []results.Record
		want []string
	}{
		{"broadcast", knownRecords(), nil},
		{"chat", chatRecords(), []string{"chat-latency", "upstream-per-message"}},
		{"game", gameRecords(), []string{"upstream-per-message", "game-input-latency"}},
		{"both", append(chatRecords(), gameRecords()...), workCharts},
	}
	for _, c := range cases {
		charts, errs := newMatrix(c.recs).charts()
		if len(errs) > 0 {
			t.Errorf("%s: %v", c.what, errs)
		}
		var got []string
		for _, ch := range charts {
			if slices.Contains(workCharts, ch.Name) {
				got = append(got, ch.Name)
				if _, err := ch.fig.render("png"); err != nil {
					t.Errorf("%s: %s: %v", c.what, ch.Name, err)
				}
				if ch.HowTo == "" {
					t.Errorf("%s: %s has no caption", c.what, ch.Name)
				}
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: charts %v, want %v", c.what, got, c.want)
		}
	}

	dir := t.TempDir()
	for _, r := range gameRecords() {
		if err := results.AppendRecord(filepath.Join(dir, results.RecordsFile), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := Report(dir); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`src="game-input-latency.png"`, `src="upstream-per-message.png"`, "Game input latency vs tick rate",
		"The dotted line is half a tick", "Chat and game cells:", "Workloads: game in rooms of 10, an input per tick: 10, 20, 60 ticks/s"} {
		if !bytes.Contains(index, []byte(want)) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, OverheadMarkdownFile)); err == nil {
		t.Error("a game run has overhead.md: Kaazing's table is a broadcast's")
	}
	if _, err := os.Stat(filepath.Join(dir, "ws-c100-r20-p512-game-r10-t20-i20-br.hgrm")); err == nil {
		t.Error("a .hgrm without a histogram") // the hand-made records have none
	}
}

// TestWorkloadFindings: what the chat and game findings say, worked out by
// hand from chatTable and gameTable.
func TestWorkloadFindings(t *testing.T) {
	t.Parallel()
	chat := newMatrix(chatRecords())
	want := "Chat in rooms of 10 at 1 message/s per client (100 clients, HTTP/1.1, browser headers): a 128 B message costs " +
		"153 B up over WebSocket, 990 B (1 request) over SSE, 995 B (1 request) over long polling and 1,120 B (1 request) over short polling every 1 s. " +
		"The leanest, WebSocket, adds 25 B to the message itself; short polling every 1 s costs 7.32× as much. " +
		"Over raw TCP (floor), with no HTTP, it takes 140 B. Up bytes are per message sent; polling's include its polls."
	if got := chat.upstreamFinding(chat.head); got != want {
		t.Errorf("chat upstream finding:\n got %s\nwant %s", got, want)
	}
	fs := chat.findings()
	if len(fs) == 0 || fs[0].text != want {
		t.Errorf("a chat run's findings do not open with the upstream finding: %v", fs)
	}
	wantLatency := "At the headline scenario (chat in rooms of 10, 100 clients, 1 message/s per client, 128 B messages, HTTP/1.1, browser headers), " +
		"p99 send → receive latency is 4 ms for WebSocket, 7 ms for SSE, 9 ms for long polling and 990 ms for short polling every 1 s. " +
		"The p99 of short polling every 1 s is 248× that of WebSocket."
	if !slices.ContainsFunc(fs, func(f finding) bool { return f.text == wantLatency }) {
		t.Errorf("chat findings lack\n%s\nin\n%v", wantLatency, fs)
	}

	game := newMatrix(gameRecords())
	want = "Game input latency in rooms of 10 at 20 ticks/s (an input per tick, 512 B snapshots, 100 clients, HTTP/1.1, browser headers), " +
		"p50 / p99: 27 ms / 49 ms over WebSocket, 28 ms / 50 ms over SSE, 31 ms / 60 ms over long polling and 525 ms / 990 ms over short polling every 1 s; " +
		"half a tick is 25 ms, the average wait for the next tick. The lowest p50, WebSocket's, is half a tick plus 2 ms."
	if got := game.inputFinding(game.head); got != want {
		t.Errorf("game input finding:\n got %s\nwant %s", got, want)
	}
	want = "Game in rooms of 10 at 20 ticks/s (an input per tick, 512 B snapshots, 100 clients, HTTP/1.1, browser headers): a 79 B input costs " +
		"85 B up over WebSocket, 870 B (1 request) over SSE, 880 B (1 request) over long polling and 900 B (1 request) over short polling every 1 s. " +
		"The leanest, WebSocket, adds 6 B to the input itself; short polling every 1 s costs 10.6× as much. Up bytes are per input sent; polling's include its polls."
	if got := game.upstreamFinding(game.head); got != want {
		t.Errorf("game upstream finding:\n got %s\nwant %s", got, want)
	}
	// The bytes per delivered snapshot along the ticks, an input per
	// tick: the slice's points are found again (dim.with).
	want = "At 10 ticks/s and 100 clients (512 B snapshots, game in rooms of 10), short polling every 1 s moves 1.35× the wire bytes per delivered snapshot of WebSocket (700 B vs 520 B, down + up). At 60 ticks/s the factor is 1.35× (700 B vs 520 B per snapshot)."
	if got := game.bytesFinding(); got != want {
		t.Errorf("game bytes finding:\n got %s\nwant %s", got, want)
	}

	// A cell with a failed check: its figures carry ⚠ and the problem is
	// a finding of its own.
	recs := chatRecords()
	for i := range recs {
		if s := recs[i].Scenario; s.Transport == "sse" && s.SendRate == 1 {
			recs[i].Checks["sends_ok"] = results.Check{OK: false, Detail: "3 of 10003 sends failed"}
		}
	}
	m := newMatrix(recs)
	got := m.upstreamFinding(m.head)
	if !strings.Contains(got, "990 B (1 request) ⚠ over SSE") || !strings.HasSuffix(got, notCleanNote) {
		t.Errorf("a not clean cell is not marked: %s", got)
	}
	if !slices.ContainsFunc(m.findings(), func(f finding) bool { return f.bad && strings.Contains(f.text, "check sends_ok failed") }) {
		t.Error("the failed check is not a finding")
	}

	// In a run of both, the chat's and the game's findings each appear
	// once, at their own headline.
	both := newMatrix(append(chatRecords(), gameRecords()...))
	var n int
	for _, f := range both.findings() {
		if strings.HasPrefix(f.text, "At the chat headline (chat in rooms of 10, 100 clients, 1 message/s per client") {
			n++
		}
		if strings.HasPrefix(f.text, "Chat in rooms of 10 at 1 message/s") || strings.HasPrefix(f.text, "Game in rooms of 10 at 20 ticks/s") ||
			strings.HasPrefix(f.text, "Game input latency in rooms of 10 at 20 ticks/s") {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d workload findings in a run of both, want 4: %v", n, both.findings())
	}
}

// TestSummaryCSVInputLatency: input_latency_ns is flattened like
// latency_ns, empty where a record has none.
func TestSummaryCSVInputLatency(t *testing.T) {
	t.Parallel()
	recs := []results.Record{upRecord(workloadChat, 1, chatTable[3]), upRecord(workloadGame, 20, gameTable[3])}
	var buf bytes.Buffer
	if err := WriteSummaryCSV(&buf, recs); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(rows[0], "input_latency_ns.p50")
	if i < 0 {
		t.Fatalf("no input_latency_ns.p50 column in %v", rows[0])
	}
	if rows[1][i] != "" || rows[2][i] != "27000000" {
		t.Errorf("input_latency_ns.p50 = %q (chat), %q (game); want empty and 27000000", rows[1][i], rows[2][i])
	}
}
