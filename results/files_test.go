package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sample is a record with every kind of field set, for round trips.
func sample(transport string, clients int) Record {
	h := NewHistogram()
	for v := int64(1000); v < 2_000_000; v += 997 {
		_ = h.RecordValue(v)
	}
	enc, err := EncodeHistogram(h)
	if err != nil {
		panic(err)
	}
	return Record{
		Schema:   Schema,
		Scenario: Scenario{Transport: transport, Clients: clients, Rate: 10, Payload: 64, DurationNs: 1e10, Schedule: "constant", Ring: 1024},
		Latency:  Summarise(h),
		Expected: 100 * uint64(clients), Delivered: 100 * uint64(clients),
		Wire:      Wire{DownBytes: 6600 * uint64(clients), DownBytesPerEvent: 66},
		Server:    Server{CPUUsPerEvent: 14.5, RSSBytesPerConn: 41 << 10},
		Checks:    map[string]Check{"no_loss": {OK: true, Detail: "lost 0"}},
		Env:       Env{GoVersion: "go1.26.8", NumCPU: 2},
		Histogram: enc,
		StartedAt: "2026-01-15T10:00:00Z", FinishedAt: "2026-01-15T10:00:14Z",
	}
}

func TestAppendAndReadRecords(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), RecordsFile)
	a := sample("sse", 10)
	b := sample("ws", 10)
	a.Schema = "" // AppendRecord fills it in
	for _, r := range []Record{a, b} {
		if err := AppendRecord(path, r); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 2 {
		t.Errorf("%d lines, want one per record", n)
	}
	got, err := ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	a.Schema = Schema
	if !reflect.DeepEqual(got, []Record{a, b}) {
		t.Errorf("records do not round-trip:\n%+v\n%+v", got, []Record{a, b})
	}
}

func TestReadRecordsSingleResult(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ResultFile)
	r := sample("ws", 1)
	if err := WriteRecord(path, r); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecords(path)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], r) {
		t.Errorf("ReadRecords(result.json) = %d records, %v", len(got), err)
	}
	recs, err := ReadRunRecords(filepath.Dir(path))
	if err != nil || len(recs) != 1 {
		t.Errorf("ReadRunRecords = %d records, %v", len(recs), err)
	}
}

func TestReadRecordsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := `{"schema":"pushbench.result/v1","scenario":{"transport":"ws"}}` + "\n"
	cases := []struct {
		name, body, want string
		n                int
		truncated        bool
	}{
		{"truncated", good + `{"schema":"pushbench.result/v1","scen`, "record 2", 1, true},
		{"other schema", good + `{"schema":"pushbench.result/v9"}` + "\n", `schema "pushbench.result/v9"`, 1, false},
		{"garbage", "not json\n", "record 1", 0, false},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name+".jsonl")
		os.WriteFile(path, []byte(c.body), 0o644)
		recs, err := ReadRecords(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
		if errors.Is(err, ErrTruncated) != c.truncated {
			t.Errorf("%s: errors.Is(err, ErrTruncated) = %v", c.name, !c.truncated)
		}
		if len(recs) != c.n {
			t.Errorf("%s: %d records before the error, want %d", c.name, len(recs), c.n)
		}
	}
	if _, err := ReadRecords(filepath.Join(dir, "missing.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestRunInfoRoundTrip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), RunInfoFile)
	info := RunInfo{
		Preset: "quick", Command: []string{"pushbench", "compare", "--quick"},
		Config: []byte(`{"clients":[1,10]}`), Env: Env{GoVersion: "go1.26.8", NumCPU: 2, Commit: "6e3b695"},
		StartedAt: "2026-01-15T10:00:00Z", CellsPlanned: 8, CellsDone: 3,
	}
	if err := WriteRunInfo(path, info); err != nil {
		t.Fatal(err)
	}
	info.CellsDone = 8
	info.FinishedAt = "2026-01-15T10:01:00Z"
	if err := WriteRunInfo(path, info); err != nil { // rewritten as cells finish
		t.Fatal(err)
	}
	got, err := ReadRunInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	info.Schema = RunSchema
	var compact bytes.Buffer
	if err := json.Compact(&compact, got.Config); err != nil {
		t.Fatal(err)
	}
	got.Config = compact.Bytes()
	if !reflect.DeepEqual(got, info) {
		t.Errorf("ReadRunInfo = %+v, want %+v", got, info)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
