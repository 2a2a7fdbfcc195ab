package servers

// Rooms (Config.Rooms). Every room is a Hub of its own — sequence numbers,
// ring, resume and gap notices are per room — and every transport fans a
// room out on its own: an r3labs stream and its pump (SSE), a dispatcher
// (WebSocket, raw TCP); the polls read the room's hub. Room 0 is the hub
// the broadcast publisher writes, made and fanned out at New exactly as
// the single hub was; the other rooms' rings grow as events come
// (newRoomHub) and their fan-out starts with the room's first subscriber
// on that transport (roomSet), so ten thousand rooms cost nothing until
// they are used and no transport pays for rooms it does not serve.
//
// A client names its room with room=R on every subscribe path and on
// /send; without it, room 0. A room the server does not have is 404.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// Bounds on Config.Rooms.
const (
	DefaultRooms = 1
	MaxRooms     = 100_000
	// MaxListedRooms bounds the rooms whose heads /stats lists one by one
	// (Stats.RoomHeads); above it /stats has only their sum, minimum and
	// maximum.
	MaxListedRooms = 10_000
)

// room is one room: its hub and what its workloads keep.
type room struct {
	id  int
	hub *Hub

	// mu serialises everything that publishes into the room through the
	// workloads — chat messages (seq assignment, encode, Publish: the hub
	// takes seq head+1 only) and game snapshots — and guards acks. The
	// broadcast publisher writes room 0 without it: it is the only writer
	// then.
	mu sync.Mutex
	// acks are the game's inputs applied in this room: the highest input
	// number from each client that has sent one, sorted by client id.
	// Reset when a game starts; at most PublishConfig.Room of them.
	acks []ack
}

// ack is one client's highest applied game input.
type ack struct{ from, n uint64 }

// applyInput records input n of client from; it reports false if the room
// already holds the acknowledgements of max other clients. The caller
// holds r.mu.
func (r *room) applyInput(from, n uint64, max int) bool {
	i, found := slices.BinarySearchFunc(r.acks, from, func(a ack, from uint64) int {
		switch {
		case a.from < from:
			return -1
		case a.from > from:
			return 1
		}
		return 0
	})
	if found {
		r.acks[i].n = maxU64(r.acks[i].n, n)
		return true
	}
	if len(r.acks) >= max {
		return false
	}
	r.acks = slices.Insert(r.acks, i, ack{from, n})
	return true
}

func maxU64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// newRooms makes n rooms with rings of k: room 0's allocated up front, the
// others growing (newRoomHub).
func newRooms(n, k int) []*room {
	rooms := make([]*room, n)
	for i := range rooms {
		h := newRoomHub(k)
		if i == 0 {
			h = NewHub(k)
		}
		rooms[i] = &room{id: i, hub: h}
	}
	return rooms
}

// statusError is a request error answered with its own status instead of
// 400.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// statusOf is err's status: its own if it is a statusError, else def.
func statusOf(err error, def int) int {
	if se := (*statusError)(nil); errors.As(err, &se) {
		return se.code
	}
	return def
}

// requestRoom parses r's query strictly (query) and the room it names
// (parseRoom): what every path that serves a room starts with.
func (s *Server) requestRoom(r *http.Request) (url.Values, *room, error) {
	q, err := query(r)
	if err != nil {
		return nil, nil, err
	}
	rm, err := s.parseRoom(q)
	return q, rm, err
}

// parseRoom returns the room q names with room=R (room 0 without one): a
// malformed R is a plain error (400), a room the server does not have a
// statusError 404.
func (s *Server) parseRoom(q url.Values) (*room, error) {
	if !q.Has("room") {
		return s.rooms[0], nil
	}
	v := q.Get("room")
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("room %q is not a room number (want 0 to %d)", v, len(s.rooms)-1)
	}
	if n >= uint64(len(s.rooms)) {
		have := fmt.Sprintf("%d rooms, 0 to %d", len(s.rooms), len(s.rooms)-1)
		if len(s.rooms) == 1 {
			have = "1 room, 0"
		}
		return nil, &statusError{404, fmt.Errorf("room %d: no such room (the server has %s)", n, have)}
	}
	return s.rooms[n], nil
}

// roomSet is one transport's fan-out of every room, each made on first use
// by newT, which also starts its feeder (Server.goFeeder). get may only be
// called from a registered handler or from New, so that no feeder starts
// after Shutdown has begun to wait for them.
type roomSet[T any] struct {
	mu   sync.Mutex
	all  []atomic.Pointer[T]
	newT func(r *room) *T
}

func newRoomSet[T any](n int, newT func(r *room) *T) *roomSet[T] {
	return &roomSet[T]{all: make([]atomic.Pointer[T], n), newT: newT}
}

// get returns r's fan-out, making it if it is the first use.
func (rs *roomSet[T]) get(r *room) *T {
	if x := rs.all[r.id].Load(); x != nil {
		return x
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if x := rs.all[r.id].Load(); x != nil {
		return x
	}
	x := rs.newT(r)
	rs.all[r.id].Store(x)
	return x
}

// peek returns r's fan-out if it has been made, else nil.
func (rs *roomSet[T]) peek(id int) *T { return rs.all[id].Load() }

// roomHeads fills the room fields of st.
func (s *Server) roomHeads(st *Stats) {
	st.Rooms = len(s.rooms)
	if len(s.rooms) <= MaxListedRooms {
		st.RoomHeads = make([]uint64, len(s.rooms))
	}
	for i, r := range s.rooms {
		h := r.hub.Head()
		if st.RoomHeads != nil {
			st.RoomHeads[i] = h
		}
		st.RoomHeadSum += h
		st.RoomHeadMax = maxU64(st.RoomHeadMax, h)
		if i == 0 || h < st.RoomHeadMin {
			st.RoomHeadMin = h
		}
	}
}
