package servers

// The control plane: GET /stats, POST /control/start and /control/stop, and
// the publisher runs they drive.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"pushbench/webhttp"
	"runtime/debug"
	"strconv"
	"time"
)

// StartPublisher starts a publishing run (see Publisher.Start).
func (s *Server) StartPublisher(c PublishConfig) error {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.RLock()
	closing := s.closing
	s.mu.RUnlock()
	if closing {
		return errors.New("server is shutting down")
	}
	s.accountPublisherCPU()
	return s.pub.Start(c)
}

// StopPublisher stops the current run, if any, and returns its statistics.
func (s *Server) StopPublisher() PublisherStats {
	s.pub.Stop()
	return s.pub.Stats()
}

// accountPublisherCPU adds the CPU time of a finished, not yet counted run
// to pubCPU. The caller holds pubMu.
func (s *Server) accountPublisherCPU() {
	st := s.pub.Stats()
	if st.Running || st.Started.IsZero() || st.Started.Equal(s.pubAccounted) {
		return
	}
	s.pubCPU += st.ThreadCPU
	s.pubAccounted = st.Started
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	writeJSON(w, s.Stats())
}

// handleGC serves POST /control/gc: a garbage collection that also returns
// freed memory to the OS (debug.FreeOSMemory), then the statistics, so that
// the RSS and heap in them are the live memory, not garbage awaiting a
// collection.
func (s *Server) handleGC(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	debug.FreeOSMemory() // runs a GC first
	writeJSON(w, s.Stats())
}

// handleStart serves POST /control/start[?workload=broadcast|chat|game]
// [&rate=R][&payload=P][&events=N][&duration=D][&schedule=constant|poisson]
// [&spin=D][&seed=S][&room=N]. Parameters may also come as a form body.
// rate is required but for a chat, which uses none of the others (they are
// still parsed, so one parameter set may serve every workload); room, the
// clients per room, is required for a game.
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	c, err := s.parseStart(r)
	if err != nil {
		fail(w, nil, http.StatusBadRequest, "/control/start: %v", err)
		return
	}
	switch err := s.StartPublisher(c); {
	case errors.Is(err, ErrRunning):
		fail(w, nil, http.StatusConflict, "/control/start: %v (POST /control/stop first)", err)
	case err != nil && s.quit.Err() != nil:
		fail(w, nil, http.StatusServiceUnavailable, "/control/start: %v", err)
	case err != nil:
		fail(w, nil, http.StatusBadRequest, "/control/start: %v", err)
	default:
		writeJSON(w, s.pub.Stats())
	}
}

func (s *Server) parseStart(r *http.Request) (PublishConfig, error) {
	c := PublishConfig{Payload: s.cfg.Payload, Spin: s.cfg.Spin}
	if err := r.ParseForm(); err != nil {
		return c, fmt.Errorf("malformed parameters: %v", err)
	}
	f := r.Form
	c.Workload = f.Get("workload")
	if f.Has("workload") && c.Workload != WorkloadBroadcast && c.Workload != WorkloadChat && c.Workload != WorkloadGame {
		return c, fmt.Errorf("workload %q: want %s, %s or %s", c.Workload, WorkloadBroadcast, WorkloadChat, WorkloadGame)
	}
	if !f.Has("rate") && c.Workload != WorkloadChat {
		if c.Workload == WorkloadGame {
			return c, errors.New("rate is required (ticks per second)")
		}
		return c, errors.New("rate is required (events per second)")
	}
	parseUint := func(v string) (uint64, error) { return strconv.ParseUint(v, 10, 64) }
	parseFloat := func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }
	for _, err := range []error{ // the first bad one: the answer is one line
		formValue(f, "rate", "a number", parseFloat, &c.Rate),
		formValue(f, "payload", "a whole number of bytes", strconv.Atoi, &c.Payload),
		formValue(f, "events", "an unsigned count", parseUint, &c.Events),
		formValue(f, "duration", "a Go duration", time.ParseDuration, &c.Duration),
		formValue(f, "spin", "a Go duration", time.ParseDuration, &c.Spin),
		formValue(f, "seed", "an unsigned integer", parseUint, &c.Seed),
		formValue(f, "room", "a whole number of clients per room", strconv.Atoi, &c.Room),
	} {
		if err != nil {
			return c, err
		}
	}
	c.Schedule = f.Get("schedule")
	return c, c.Validate()
}

// formValue parses f's key into *dst when it is present, leaving *dst as
// it is otherwise; the error names the key, the value and what it should be.
func formValue[T any](f url.Values, key, want string, parse func(string) (T, error), dst *T) error {
	if !f.Has(key) {
		return nil
	}
	v, err := parse(f.Get(key))
	if err != nil {
		return fmt.Errorf("%s %q is not %s", key, f.Get(key), want)
	}
	*dst = v
	return nil
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	writeJSON(w, s.StopPublisher())
}

// allow answers 405 with an Allow header and returns false unless r uses
// method.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	fail(w, nil, http.StatusMethodNotAllowed, "%s: method %s not allowed (want %s)", r.URL.Path, r.Method, method)
	return false
}

// control wraps a /control/* handler with two refusals.
//
// A missing or wrong bearer token (Config.Token; none set: no check) is a
// 401, counted (Stats.ControlUnauthorized); the comparison takes the same
// time whatever the token.
//
// A request from any web page is a 403, whatever Config.CORS allows and
// even from the server's own origin: a POST without a body is a "simple"
// request, which a browser sends cross-origin without asking, and a page
// whose name is re-pointed at 127.0.0.1 (DNS rebinding) even sends it with
// Origin and Host alike. So any site a visitor opens could start, stop or
// collect a loopback server. A browser always sends Origin on a POST; the
// harness, curl and scripts send none. --cors lets other pages read the
// streams, not drive the server.
func (s *Server) control(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token != "" && !webhttp.BearerOK(r, s.cfg.Token) {
			s.unauthorized.Add(1)
			w.Header().Set("WWW-Authenticate", `Bearer realm="pushbench control"`)
			fail(w, nil, http.StatusUnauthorized, "%s: a bearer token is required (Authorization: Bearer TOKEN, the server's --token)", r.URL.Path)
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			fail(w, nil, http.StatusForbidden, "%s: origin %q: the control endpoints take no requests from web pages (--cors covers the transports and /stats only)", r.URL.Path, origin)
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}
