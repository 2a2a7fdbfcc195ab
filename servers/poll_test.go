package servers

import (
	"context"
	"io"
	"net/http"
	"pushbench/transport"
	"strings"
	"testing"
)

// TestPollBody checks the exact /poll and /longpoll answers for a ring of 4
// after 6 events: events 1 and 2 have left it.
func TestPollBody(t *testing.T) {
	const p = 60
	ts := startServer(t, Config{Ring: 4}, nil)
	publish(t, ts.Hub(), 6, p)
	e := func(seq uint64) string { return eventBytes(t, seq, p) }
	c := httpClient(t)
	tests := []struct {
		query string
		want  string
	}{
		{"", "[" + `{"gap":[1,2]},` + e(3) + "," + e(4) + "," + e(5) + "," + e(6) + "]"},
		{"since=0", "[" + `{"gap":[1,2]},` + e(3) + "," + e(4) + "," + e(5) + "," + e(6) + "]"},
		{"since=1", "[" + `{"gap":[2,2]},` + e(3) + "," + e(4) + "," + e(5) + "," + e(6) + "]"},
		{"since=2", "[" + e(3) + "," + e(4) + "," + e(5) + "," + e(6) + "]"},
		{"since=4", "[" + e(5) + "," + e(6) + "]"},
		{"since=5", "[" + e(6) + "]"},
		{"since=0&max=1", "[" + `{"gap":[1,2]},` + e(3) + "]"},
		{"since=3&max=2", "[" + e(4) + "," + e(5) + "]"},
		{"since=6", "[]"},
	}
	for _, path := range []string{"/poll", "/longpoll"} {
		for _, tt := range tests {
			if path == "/longpoll" && tt.want == "[]" {
				continue // held; see TestLongPollHold
			}
			code, body, ct := do(t, c, "GET", ts.url+path+"?"+tt.query, nil)
			if code != http.StatusOK || ct != "application/json" || body != tt.want {
				t.Errorf("GET %s?%s: %d %q\n got %s\nwant %s", path, tt.query, code, ct, body, tt.want)
			}
		}
	}
	st := ts.Stats().Transports[transport.ShortPoll]
	if st.Requests != uint64(len(tests)) || st.EmptyResponses != 1 || st.Gaps != 4 || st.GapEvents != 2+2+1+2 || st.EventsSent != 4+4+4+4+2+1+1+2 || st.BadRequests != 0 {
		t.Errorf("shortpoll stats %+v", st)
	}
}

// TestLongPollHold checks that a held long poll answers with the first event
// published after it, and [] when its hold time passes.
func TestLongPollHold(t *testing.T) {
	const p = 60
	ts := startServer(t, Config{Ring: 16}, nil)
	publish(t, ts.Hub(), 2, p)
	c := httpClient(t)

	type answer struct {
		code int
		body string
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := c.Get(ts.url + "/longpoll?since=2")
		if err != nil {
			got <- answer{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- answer{resp.StatusCode, string(b)}
	}()
	waitFor(t, "the long poll to be held", func() bool { return ts.tc(transport.LongPoll).active.Load() == 1 })
	publish(t, ts.Hub(), 1, p)
	if a := <-got; a.code != http.StatusOK || a.body != "["+eventBytes(t, 3, p)+"]" {
		t.Fatalf("held long poll answered %d %q", a.code, a.body)
	}

	// hold=1ns: the timer fires at once and the answer is empty.
	code, body, _ := do(t, c, "GET", ts.url+"/longpoll?since=3&hold=1ns", nil)
	if code != http.StatusOK || body != "[]" {
		t.Fatalf("expired hold answered %d %q", code, body)
	}

	// A client that goes away while held ends the handler.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.url+"/longpoll?since=3", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the long poll to be held", func() bool { return ts.tc(transport.LongPoll).active.Load() == 1 })
	cancel()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("cancelled long poll: %v", err)
	}
	waitFor(t, "the handler to end", func() bool { return ts.tc(transport.LongPoll).active.Load() == 0 })

	st := ts.Stats().Transports[transport.LongPoll]
	if st.Requests != 3 || st.EmptyResponses != 1 || st.EventsSent != 1 || st.Active != 0 {
		t.Errorf("longpoll stats %+v", st)
	}
}
