package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"pushbench/results"
)

// Workloads as records state them (scenario.workload). Records made before
// workloads existed say nothing, which reads as broadcast.
const (
	workloadBroadcast = "broadcast"
	workloadChat      = "chat"
	workloadGame      = "game"
)

// workKey is what drove a cell's traffic, normalised so that a record from
// before workloads existed and one that says "broadcast" are the same key
// (the zero value): like the HTTP options and the network, two cells that
// differ here are different cells, so chat, game and broadcast never
// merge. The rate the workload sweeps is coord.Rate (sweepRate).
type workKey struct {
	Kind string // "" (broadcast), chat, game, or a workload this report does not know
	Room int    // clients per room (chat, game)
	// InputRate is each game client's inputs per second. Along the rate
	// axis (dimRate.without) an input rate equal to the tick rate becomes
	// inputPerTick, so that a sweep of ticks with an input per tick is one
	// line.
	InputRate float64
}

// inputPerTick is workKey.InputRate for "one input per tick" in a key
// whose tick rate is not fixed (dimRate.without).
const inputPerTick = -1

func workOf(s results.Scenario) workKey {
	switch s.Workload {
	case "", workloadBroadcast:
		return workKey{}
	case workloadGame:
		return workKey{Kind: workloadGame, Room: s.Room, InputRate: s.InputRate}
	}
	return workKey{Kind: s.Workload, Room: s.Room}
}

// sweepRate is the rate a cell's workload sweeps, coord.Rate: a
// broadcast's events per second, a chat client's messages per second
// (scenario.rate is then clients × send_rate), the game's ticks per
// second (= scenario.rate).
func sweepRate(s results.Scenario) float64 {
	switch {
	case s.Workload == workloadChat && s.SendRate > 0:
		return s.SendRate
	case s.Workload == workloadGame && s.Tick > 0:
		return s.Tick
	}
	return s.Rate
}

func (w workKey) isBroadcast() bool { return w.Kind == "" }

// upstream reports whether the clients originate the traffic (chat, game).
func (w workKey) upstream() bool { return w.Kind == workloadChat || w.Kind == workloadGame }

func isUpstream(r *results.Record) bool { return workOf(r.Scenario).upstream() }

func isGame(r *results.Record) bool { return r.Scenario.Workload == workloadGame }

// workSuffix is the workload's part of a bench.txt name, "" for a
// broadcast so that older names stay as they were:
// "/workload=chat/room=10/send-rate=1",
// "/workload=game/room=10/tick=20/input-rate=20".
func workSuffix(s results.Scenario) string {
	switch s.Workload {
	case "", workloadBroadcast:
		return ""
	case workloadChat:
		return fmt.Sprintf("/workload=chat/room=%d/send-rate=%s", s.Room, fmtRate(s.SendRate))
	case workloadGame:
		return fmt.Sprintf("/workload=game/room=%d/tick=%s/input-rate=%s", s.Room, fmtRate(s.Tick), fmtRate(s.InputRate))
	}
	return fmt.Sprintf("/workload=%s/room=%d", s.Workload, s.Room)
}

// workStem is the short form of workSuffix for file names:
// "-chat-r10-s1", "-game-r10-t20-i20".
func workStem(s results.Scenario) string {
	switch s.Workload {
	case "", workloadBroadcast:
		return ""
	case workloadChat:
		return fmt.Sprintf("-chat-r%d-s%s", s.Room, fmtRate(s.SendRate))
	case workloadGame:
		return fmt.Sprintf("-game-r%d-t%s-i%s", s.Room, fmtRate(s.Tick), fmtRate(s.InputRate))
	}
	return fmt.Sprintf("-%s-r%d", s.Workload, s.Room)
}

// compareWork orders workloads broadcast first, then chat, then the game,
// then by room and input rate.
func compareWork(a, b workKey) int {
	rank := func(k string) int {
		switch k {
		case "":
			return 0
		case workloadChat:
			return 1
		case workloadGame:
			return 2
		}
		return 3
	}
	if c := cmp.Compare(rank(a.Kind), rank(b.Kind)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Room, b.Room); c != 0 {
		return c
	}
	return cmp.Compare(a.InputRate, b.InputRate)
}

// label names the workload for the table's workload column: "broadcast",
// "chat, rooms of 10", "game, rooms of 10, 20 inputs/s".
func (w workKey) label() string {
	switch w.Kind {
	case "":
		return workloadBroadcast
	case workloadGame:
		s := "game, " + roomsOf(w.Room)
		if w.InputRate > 0 {
			s += ", " + perSecond(w.InputRate, "input")
		}
		return s
	}
	return w.Kind + ", " + roomsOf(w.Room)
}

func roomsOf(n int) string {
	if n == 1 {
		return "rooms of 1"
	}
	return "rooms of " + strconv.Itoa(n)
}

// perSecond writes "1 input/s", "0.2 inputs/s".
func perSecond(v float64, word string) string {
	if v == 1 {
		return "1 " + word + "/s"
	}
	return fmtRate(v) + " " + word + "s/s"
}

// rateText writes the workload's rate for a sentence: "10 events/s",
// "1 message/s per client", "20 ticks/s".
func (w workKey) rateText(rate float64) string {
	switch w.Kind {
	case workloadChat:
		return perSecond(rate, "message") + " per client"
	case workloadGame:
		return perSecond(rate, "tick")
	}
	return rateLabel(rate)
}

// rateCell writes the rate for the table when it shows workloads:
// "10 ev/s", "1 msg/s per client", "20 ticks/s".
func (w workKey) rateCell(rate float64) string {
	switch w.Kind {
	case workloadChat:
		return fmtRate(rate) + " msg/s per client"
	case workloadGame:
		return fmtRate(rate) + " ticks/s"
	}
	return fmtRate(rate) + " ev/s"
}

// rateTick writes the rate under a bar group: "10 ev/s", "0.2 msg/s",
// "20 ticks/s".
func (w workKey) rateTick(rate float64) string {
	switch w.Kind {
	case workloadChat:
		return fmtRate(rate) + " msg/s"
	case workloadGame:
		return fmtRate(rate) + " ticks/s"
	}
	return fmtRate(rate) + " ev/s"
}

// rateAxis names the rate on a chart's x axis.
func (w workKey) rateAxis() string {
	switch w.Kind {
	case workloadChat:
		return "send rate (messages/s per client, log scale)"
	case workloadGame:
		return "tick rate (ticks/s, log scale)"
	}
	return "event rate (events/s, log scale)"
}

// rateName is what the rate is called in a chart's title.
func (w workKey) rateName() string {
	switch w.Kind {
	case workloadChat:
		return "send rate"
	case workloadGame:
		return "tick rate"
	}
	return "event rate"
}

// payloadText writes the payload for a sentence: "64 B payload", "128 B
// messages", "512 B snapshots".
func (w workKey) payloadText(payload int) string {
	switch w.Kind {
	case workloadChat:
		return strconv.Itoa(payload) + " B messages"
	case workloadGame:
		return strconv.Itoa(payload) + " B snapshots"
	}
	return strconv.Itoa(payload) + " B payload"
}

// eventNoun is what a delivered "event" is: an event, a chat message, a
// game snapshot.
func (w workKey) eventNoun() string {
	switch w.Kind {
	case workloadChat:
		return "message"
	case workloadGame:
		return "snapshot"
	}
	return "event"
}

// latencyNoun is what latency_ns measures: delivery latency (broadcast),
// send → receive latency (chat), snapshot latency (game).
func (w workKey) latencyNoun() string {
	switch w.Kind {
	case workloadChat:
		return "send → receive latency"
	case workloadGame:
		return "snapshot latency"
	}
	return "delivery latency"
}

// describePart names the workload in describe: "chat in rooms of 10";
// the game adds its inputs ("an input per tick" when they come at the
// tick rate, or the rate is not fixed and they follow it).
func (w workKey) describePart(rate float64) string {
	if w.isBroadcast() {
		return ""
	}
	s := w.Kind + " in " + roomsOf(w.Room)
	if w.Kind == workloadGame {
		switch {
		case w.InputRate == inputPerTick || w.InputRate == rate && rate > 0:
			s += ", an input per tick"
		case w.InputRate > 0:
			s += ", " + perSecond(w.InputRate, "input") + " per client"
		}
	}
	return s
}

// hasWorkloads reports whether a cell of the run is not a broadcast: the
// tables then show the workload and the upstream figures.
func (m *matrix) hasWorkloads() bool {
	for _, c := range m.cells {
		if !c.at.Work.isBroadcast() {
			return true
		}
	}
	return false
}

// hasUpstream reports whether a cell of the run is a chat or a game.
func (m *matrix) hasUpstream() bool {
	for _, c := range m.cells {
		if c.at.Work.upstream() {
			return true
		}
	}
	return false
}

// hasKind reports whether a cell of the run has workload kind.
func (m *matrix) hasKind(kind string) bool {
	for _, c := range m.cells {
		if c.at.Work.Kind == kind {
			return true
		}
	}
	return false
}

// workloads describes each workload of the run with the rates it swept,
// in compareWork's order: "broadcast: 1, 10 events/s", "chat in rooms of
// 10: 0.2, 1, 5 messages/s per client", "game in rooms of 10, an input per
// tick: 10, 20, 60 ticks/s".
func (m *matrix) workloads() []string {
	var keys []workKey
	rates := map[workKey][]*cell{}
	for _, c := range m.cells {
		k := dimRate.without(c.at).Work
		if _, ok := rates[k]; !ok {
			keys = append(keys, k)
		}
		rates[k] = append(rates[k], c)
	}
	slices.SortFunc(keys, compareWork)
	var out []string
	for _, k := range keys {
		what := k.describePart(0)
		if what == "" {
			what = workloadBroadcast
		}
		unit := map[string]string{"": "events/s", workloadChat: "messages/s per client", workloadGame: "ticks/s"}[k.Kind]
		if unit == "" {
			unit = "/s"
		}
		out = append(out, fmt.Sprintf("%s: %s %s", what, joinValues(distinct(rates[k], dimRate)), unit))
	}
	return out
}

// forWork puts a broadcast's words for a chart or a finding in w's: a
// delivered event is a delivered message (chat) or snapshot (game), the
// event rate the send rate or the tick rate, delivery latency send →
// receive or snapshot latency. A broadcast keeps the text as it is.
func forWork(w workKey, text string) string {
	if w.isBroadcast() {
		return text
	}
	return strings.NewReplacer(
		"delivered event", "delivered "+w.eventNoun(),
		"the event itself", "the "+w.eventNoun()+" itself",
		"event rate", w.rateName(),
		"delivery latency", w.latencyNoun(),
	).Replace(text)
}
