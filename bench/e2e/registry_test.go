package e2e

import (
	"slices"
	"testing"

	"pushbench/clients"
	"pushbench/servers"
	"pushbench/transport"
)

// TestRegistryComplete fails when a registry entry lacks a server, a client
// or a chart style, and when a server or client is registered for a name
// the registry does not have. (Adding a transport is one registry entry,
// one server file and one client file; this is what makes that complete.)
func TestRegistryComplete(t *testing.T) {
	paths := map[string]string{}
	for _, tr := range transport.All() {
		t.Run(tr.Name, func(t *testing.T) {
			if !servers.Has(tr.Name) {
				t.Errorf("no server: register one in servers/ (registerTransport)")
			}
			if !clients.Has(tr.Name) {
				t.Errorf("no client: register one in clients/ (registerClient)")
			}
			if tr.Color.A == 0 {
				t.Errorf("no chart colour (Color %v has alpha 0)", tr.Color)
			}
			if !slices.Contains(transport.Markers, tr.Marker) {
				t.Errorf("marker %q is not one the report draws (%v)", tr.Marker, transport.Markers)
			}
			if tr.Label == "" || tr.Help == "" || tr.Path == "" || tr.Path[0] != '/' {
				t.Errorf("label %q, help %q, path %q: want all three, the path absolute", tr.Label, tr.Help, tr.Path)
			}
			if tr.Kind != transport.Poll && tr.Kind != transport.Stream {
				t.Errorf("kind %v", tr.Kind)
			}
			if other, dup := paths[tr.Path]; dup {
				t.Errorf("path %s is %s's too", tr.Path, other)
			}
			paths[tr.Path] = tr.Name
		})
	}
	// The other way round: a server or a client without an entry.
	for side, names := range map[string][]string{"server": servers.Registered(), "client": clients.Registered()} {
		for _, name := range names {
			if _, ok := transport.Lookup(name); !ok {
				t.Errorf("%s %q has no registry entry", side, name)
			}
		}
		if len(names) != len(transport.Names()) {
			t.Errorf("%d %ss for %d registry entries: %v", len(names), side, len(transport.Names()), names)
		}
	}
}
