package servers

import (
	"context"
	"strings"
	"testing"

	"pushbench/transport"
)

// TestEveryTransportServed: New builds one server per registry entry, in
// registry order, and Stats reports each of them.
func TestEveryTransportServed(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	var names []string
	for _, tr := range s.transports {
		names = append(names, tr.name)
	}
	if got, want := strings.Join(names, ","), strings.Join(transport.Names(), ","); got != want {
		t.Errorf("transports %s, want the registry's %s", got, want)
	}
	st := s.Stats()
	for _, name := range transport.Names() {
		if !Has(name) {
			t.Errorf("Has(%q) = false", name)
		}
		if _, ok := st.Transports[name]; !ok {
			t.Errorf("Stats lacks %s", name)
		}
	}
	if len(st.Transports) != len(transport.Names()) {
		t.Errorf("Stats has %d transports, want %d", len(st.Transports), len(transport.Names()))
	}
	if Has("carrier-pigeon") {
		t.Error(`Has("carrier-pigeon") = true`)
	}
}

// TestNewNeedsEveryServer: a registry entry without a server is an error
// that names it. (No test in this package runs in parallel, so the
// registration map may be changed here.)
func TestNewNeedsEveryServer(t *testing.T) {
	name := transport.Names()[len(transport.Names())-1]
	newT := registered[name]
	delete(registered, name)
	defer func() { registered[name] = newT }()
	s, err := New(Config{})
	if err == nil {
		s.Shutdown(context.Background())
		t.Fatalf("New without a %s server succeeded", name)
	}
	if want := `transport "` + name + `" has no server`; !strings.Contains(err.Error(), want) {
		t.Errorf("New error %q, want it to contain %q", err, want)
	}
}
