package results

import (
	"encoding/json"
	"fmt"
	"os"
)

// CapacityFile is the capacity search's result in its run folder
// (`pushbench capacity`), beside results.jsonl, which holds every step's
// record.
const CapacityFile = "capacity.json"

// CapacitySchema names the version of Capacity.
const CapacitySchema = "pushbench.capacity/v1"

// Capacity is capacity.json: the objective, the machine's ceiling and, per
// transport, every step of the search and what it found.
type Capacity struct {
	Schema string `json:"schema"`
	// Dimension is what was searched: "clients" (at a fixed rate) or
	// "rate" (events/s at a fixed number of clients).
	Dimension string `json:"dimension"`
	// The objective a step had to meet: p99 (and p50, 0: none), no loss,
	// and the checks that make a measurement sound (SoundChecks).
	P99Ns       int64    `json:"objective_p99_ns"`
	P50Ns       int64    `json:"objective_p50_ns,omitempty"`
	SoundChecks []string `json:"sound_checks"`
	// The fixed side of the search.
	Rate    float64 `json:"rate"`    // events/s (clients dimension)
	Clients int     `json:"clients"` // clients (rate dimension)
	Payload int     `json:"payload"`
	// Ceiling is the most clients the machine allows one run, and which
	// limit sets it; MaxAsked is --max-clients (clipped to the ceiling,
	// Clipped says so).
	Ceiling    int    `json:"ceiling"`
	CeilingWhy string `json:"ceiling_why"`
	MaxAsked   int    `json:"max_asked"`
	Clipped    bool   `json:"clipped"`

	Command    []string            `json:"command"`
	StartedAt  string              `json:"started_at"`
	FinishedAt string              `json:"finished_at,omitempty"` // "" while running or after an interruption
	Env        Env                 `json:"env"`
	Transports []CapacityTransport `json:"transports"`
}

// CapacityTransport is one transport's search.
type CapacityTransport struct {
	Transport string `json:"transport"`
	// MaxClients is the largest passing value (clients; events/s in the
	// rate dimension): the capacity, unless AtCeiling or AtMax.
	MaxClients int `json:"max_clients"`
	// FirstFail is the smallest failing value above it, and why it failed.
	FirstFail *CapacityStep `json:"first_fail,omitempty"`
	// At the edge (the step at MaxClients): deliveries per second.
	EdgeDeliveriesPerS float64 `json:"edge_deliveries_per_s"`
	// AtCeiling: every step passed up to the machine's ceiling, so the
	// transport's edge was not found (not a capacity); AtMax the same up
	// to --max-clients.
	AtCeiling   bool           `json:"at_ceiling"`
	AtMax       bool           `json:"at_max"`
	NonMonotone bool           `json:"non_monotone"` // a step passed above a failure
	Interrupted bool           `json:"interrupted"`
	Summary     string         `json:"summary"` // one line
	Steps       []CapacityStep `json:"steps"`
}

// CapacityStep is one step: a full measured cell at Value.
type CapacityStep struct {
	Value          int      `json:"value"`
	Pass           bool     `json:"pass"`
	Reason         string   `json:"reason,omitempty"`
	P50Ns          int64    `json:"p50_ns"`
	P99Ns          int64    `json:"p99_ns"`
	Lost           uint64   `json:"lost"`
	Expected       uint64   `json:"expected"`
	DeliveriesPerS float64  `json:"deliveries_per_s"`
	FailedChecks   []string `json:"failed_checks,omitempty"`
	Error          string   `json:"error,omitempty"`
}

// WriteCapacity writes capacity.json at path.
func WriteCapacity(path string, c Capacity) error {
	if c.Schema == "" {
		c.Schema = CapacitySchema
	}
	return WriteJSONFile(path, c)
}

// ReadCapacity reads a capacity.json file.
func ReadCapacity(path string) (Capacity, error) {
	var c Capacity
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if c.Schema != CapacitySchema {
		return c, fmt.Errorf("%s: schema %q, want %q", path, c.Schema, CapacitySchema)
	}
	return c, nil
}
