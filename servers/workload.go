package servers

// The workloads a run may be (PublishConfig.Workload, POST
// /control/start?workload=…; docs/protocol.md):
//
//   - broadcast: the publisher's events into room 0, to every client.
//   - chat: no publisher. Every upstream message (upstream.go) is published
//     into its room as an event of the message's size, seq the room's next,
//     t the message's scheduled send time, its pad tagged
//     "f<from>n<n>;" (event.AppendMessageTag, event.AppendTagged): encoded
//     once, under the room's lock, and fanned out like any event, to the
//     sender too.
//   - game: the publisher's schedule (rate = ticks per second, constant or
//     poisson, spin, events or duration) drives a tick loop. At each tick
//     every room gets one snapshot of Payload bytes, seq the room's next
//     (the tick number in a fresh server), t the tick's due time, its pad
//     opening with the acknowledgements of the inputs the room has applied
//     ("a<from>:<n>;" per client, sorted by client id). Upstream messages
//     are inputs: applied (the highest n per client is kept), never fanned
//     out. A tick builds its snapshots when it is due, so every input
//     applied before the due time is in them.

import (
	"errors"
	"fmt"
	"time"

	"pushbench/event"
)

// Workloads (PublishConfig.Workload).
const (
	WorkloadBroadcast = "broadcast"
	WorkloadChat      = "chat"
	WorkloadGame      = "game"
)

const (
	// maxGameRoom bounds PublishConfig.Room: the acknowledgements of
	// more clients could never fit an event.
	maxGameRoom = event.MaxSize / event.AckBytes
	// maxSnapshotRate bounds a game's ticks per second times its rooms,
	// as the publisher's 1,000,000 events/s bound a broadcast.
	maxSnapshotRate = 1_000_000
	// maxTickBytes bounds a tick's snapshots in all rooms together: they
	// are allocated at once (gameSource).
	maxTickBytes = 256 << 20
	// ChatMinSize is the smallest chat message that is always delivered:
	// its event (the same size) then holds any seq, t and tag, 'f', 20
	// digits, 'n', 20 digits, ';'. A smaller message is delivered when
	// its numbers leave room for the tag, and refused (400, close)
	// otherwise.
	ChatMinSize = event.MinSize + len(`,"pad":""`) + 1 + 20 + 1 + 20 + 1
)

// gameSource is a game's tick loop (a publisher source): one snapshot per
// room per tick.
//
// Allocation: prepare, before the tick's due time, makes one []byte of
// rooms × payload bytes and one []Entry of rooms entries — two allocations
// per tick, whatever the number of rooms; each snapshot is a slice of
// them, and a tick's arrays are freed once its snapshots have left every
// ring. At the due time publish allocates nothing but what Hub.Publish
// does (the next wake channel, and a growing room ring's doubling); the
// acknowledgements are assembled in one buffer reused by every room and
// tick, and each snapshot is encoded once into its slice.
type gameSource struct {
	rooms   []*room
	payload int
	data    []byte  // this tick's snapshots, payload bytes per room
	entries []Entry // this tick's entries, one per room
	acks    []byte  // scratch: one room's acknowledgements
}

func (g *gameSource) prepare(time.Time) {
	g.data = make([]byte, len(g.rooms)*g.payload)
	g.entries = make([]Entry, len(g.rooms))
}

// publish builds and publishes the tick's snapshot in every room, each
// under the room's lock so that its acknowledgements are exactly the
// inputs applied before it. The tick's lag is taken after the last room's.
func (g *gameSource) publish(due, _ time.Time) (uint64, time.Time) {
	t := due.UnixNano()
	var first uint64
	for i, r := range g.rooms {
		buf := g.data[i*g.payload : i*g.payload : (i+1)*g.payload]
		e := &g.entries[i]
		r.mu.Lock()
		g.acks = g.acks[:0]
		for _, a := range r.acks {
			g.acks = event.AppendAck(g.acks, a.from, a.n)
		}
		seq := r.hub.Head() + 1
		data, err := event.AppendTagged(buf, event.Event{Seq: seq, T: t}, g.payload, g.acks)
		if err != nil {
			// Validate checked that the payload holds Room acks and
			// applyInput keeps no more; this cannot happen.
			panic(fmt.Sprintf("game snapshot of room %d: %v", r.id, err))
		}
		*e = Entry{Seq: seq, T: t, Published: time.Now().UnixNano(), Data: data}
		err = r.hub.Publish(e)
		r.mu.Unlock()
		if err != nil {
			panic(err) // only the tick loop publishes in a game; a hole is a bug
		}
		if i == 0 {
			first = seq
		}
	}
	return first, time.Now()
}

// chatMessage publishes the chat message msg (u decoded from it) into room
// r: one event of len(msg) bytes, encoded once.
func (s *Server) chatMessage(r *room, msg []byte, u event.Upstream) error {
	var tagBuf [event.AckBytes]byte // 'f', 20 digits, 'n', 20 digits, ';'
	tag := event.AppendMessageTag(tagBuf[:0], u)
	data := make([]byte, 0, len(msg))
	e := &Entry{T: u.T}
	r.mu.Lock()
	e.Seq = r.hub.Head() + 1
	data, err := event.AppendTagged(data, event.Event{Seq: e.Seq, T: u.T}, len(msg), tag)
	if err == nil {
		e.Data = data
		e.Published = time.Now().UnixNano()
		err = r.hub.Publish(e)
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("a chat message of %d bytes cannot be delivered as an event of its size: %v", len(msg), err)
	}
	s.pub.chatPublished.Add(1)
	return nil
}

// errRoomFull is a game input from one client more than the room holds.
var errRoomFull = errors.New("room full")

// gameInput applies the game input u in room r; room is the run's clients
// per room.
func (s *Server) gameInput(r *room, u event.Upstream, room int) error {
	r.mu.Lock()
	ok := r.applyInput(u.From, u.N, room)
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: room %d already has the inputs of %d clients (room=%d at /control/start), so client %d's acknowledgement would not fit its snapshots", errRoomFull, r.id, room, room, u.From)
	}
	return nil
}
