package transport

import (
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	names := Names()
	if len(names) != len(All()) || names[0] != ShortPoll || names[len(names)-1] != TCP {
		t.Fatalf("Names() = %v", names)
	}
	seen := map[string]bool{}
	floors := 0
	for i, tr := range All() {
		if seen[tr.Name] || seen[tr.Path] {
			t.Errorf("%s: name or path %s used twice", tr.Name, tr.Path)
		}
		seen[tr.Name], seen[tr.Path] = true, true
		if tr.Kind != Poll && tr.Kind != Stream {
			t.Errorf("%s: kind %v", tr.Name, tr.Kind)
		}
		if tr.Interval && tr.Kind != Poll {
			t.Errorf("%s: an interval transport must poll", tr.Name)
		}
		if tr.Label == "" || tr.Help == "" || tr.Path == "" {
			t.Errorf("%s: label, help and path are required: %+v", tr.Name, tr)
		}
		if Rank(tr.Name) != i {
			t.Errorf("Rank(%s) = %d, want %d", tr.Name, Rank(tr.Name), i)
		}
		if tr.Floor {
			floors++
		}
	}
	if floors != 1 {
		t.Errorf("%d floor transports, want one", floors)
	}
	if Rank("pigeon") != len(names) || IsPoll("pigeon") || HasInterval("pigeon") {
		t.Error("an unknown name must sort last and be neither poll nor interval")
	}
	if _, err := Get("pigeon"); err == nil || err.Error() != `unknown transport "pigeon" (want shortpoll, longpoll, sse, ws or tcp)` {
		t.Errorf("Get(pigeon) = %v", err)
	}
}

func TestVariantName(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		want     string
	}{
		{ShortPoll, time.Second, "shortpoll-1s"},
		{ShortPoll, 100 * time.Millisecond, "shortpoll-100ms"},
		{ShortPoll, 0, "shortpoll"},
		{WebSocket, time.Second, "ws"}, // no interval: the interval is ignored
	} {
		if got := VariantName(tc.name, tc.interval); got != tc.want {
			t.Errorf("VariantName(%s, %v) = %q, want %q", tc.name, tc.interval, got, tc.want)
		}
	}
}
