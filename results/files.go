package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Names of the files in a run folder (design.md section 6).
const (
	RecordsFile = "results.jsonl" // one Record per line, a comparison
	ResultFile  = "result.json"   // one Record, a single `pushbench run`
	RunInfoFile = "run.json"      // RunInfo

	// Beside result.json, a single run writes its latency distribution as
	// percentiles (µs) and as an HdrHistogram V2 compressed base64
	// snapshot (ns).
	LatencyHGRMFile = "latency.hgrm"
	LatencyHDRFile  = "latency.hdr"
)

// RunSchema names the version of RunInfo.
const RunSchema = "pushbench.run/v1"

// RunInfo describes a run folder as a whole: what was asked for and where it
// ran. `pushbench compare` writes it when it starts and rewrites it as cells
// finish, so an interrupted comparison still says how far it got.
type RunInfo struct {
	Schema  string   `json:"schema"`
	Preset  string   `json:"preset"`  // e.g. "default", "quick", "" for a single run
	Command []string `json:"command"` // the command line, os.Args
	// Config is the comparison's configuration (the scenario matrix and
	// every flag), as its owner encodes it. The report shows it verbatim.
	Config json.RawMessage `json:"config,omitempty"`
	Env    Env             `json:"env"`

	StartedAt  string `json:"started_at"`  // RFC 3339
	FinishedAt string `json:"finished_at"` // RFC 3339; "" while running or if interrupted

	CellsPlanned int `json:"cells_planned"`
	CellsDone    int `json:"cells_done"`
}

// ErrTruncated reports a record cut off at the end of a file: the run was
// interrupted while writing it. ReadRecords still returns the records before it.
var ErrTruncated = errors.New("truncated record at end of file (interrupted run?)")

// ReadRecords reads the records of path: a results.jsonl file (one JSON
// record per line) or a result.json file (one record, indented or not).
// Records of another schema are an error. On error, recs holds the records
// read before the bad one; an incomplete last record gives an error
// wrapping ErrTruncated.
func ReadRecords(path string) (recs []Record, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for n := 1; ; n++ {
		var r Record
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return recs, fmt.Errorf("%s: record %d: %w", path, n, ErrTruncated)
		}
		if err != nil {
			return recs, fmt.Errorf("%s: record %d: %w", path, n, err)
		}
		if r.Schema != Schema {
			return recs, fmt.Errorf("%s: record %d: schema %q, want %q", path, n, r.Schema, Schema)
		}
		recs = append(recs, r)
	}
}

// ReadRunRecords reads the records of the run folder dir: results.jsonl,
// or result.json when there is no results.jsonl.
func ReadRunRecords(dir string) ([]Record, error) {
	path := filepath.Join(dir, RecordsFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		path = filepath.Join(dir, ResultFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no %s or %s", dir, RecordsFile, ResultFile)
		}
	}
	return ReadRecords(path)
}

// AppendRecord appends rec to the JSONL file path as one line, creating the
// file if needed, and syncs it to disk, so that an interrupted comparison
// keeps every cell it finished. An empty rec.Schema is set to Schema.
func AppendRecord(path string, rec Record) error {
	if rec.Schema == "" {
		rec.Schema = Schema
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("append record: %w", err)
	}
	line = append(line, '\n')
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("append record: %w", err)
	}
	// One write of the whole line: with O_APPEND, a crash leaves at most a
	// partial last line, which ReadRecords reports as ErrTruncated.
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("append record %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("append record %s: %w", path, err)
	}
	return f.Close()
}

// WriteRecord writes rec as an indented result.json file at path.
func WriteRecord(path string, rec Record) error {
	if rec.Schema == "" {
		rec.Schema = Schema
	}
	return WriteJSONFile(path, rec)
}

// WriteRunInfo writes info to path (run.json) atomically: a reader never
// sees a half-written file. An empty info.Schema is set to RunSchema.
func WriteRunInfo(path string, info RunInfo) error {
	if info.Schema == "" {
		info.Schema = RunSchema
	}
	return WriteJSONFile(path, info)
}

// ReadRunInfo reads a run.json file.
func ReadRunInfo(path string) (RunInfo, error) {
	var info RunInfo
	data, err := os.ReadFile(path)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	if info.Schema != RunSchema {
		return info, fmt.Errorf("%s: schema %q, want %q", path, info.Schema, RunSchema)
	}
	return info, nil
}

// WriteJSONFile writes v as indented JSON through a temporary file in the
// same folder and a rename.
func WriteJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(data, '\n'))
}

// WriteFileAtomic writes data to path through a temporary file and a
// rename, so that an interrupted or failed write never leaves an empty or
// partial file behind.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteRun writes result.json, latency.hgrm and latency.hdr into dir.
func WriteRun(dir string, rec *Record, hist *hdrhistogram.Histogram) error {
	if err := WriteRecord(filepath.Join(dir, ResultFile), *rec); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, LatencyHDRFile), []byte(rec.Histogram+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", LatencyHDRFile, err)
	}
	f, err := os.Create(filepath.Join(dir, LatencyHGRMFile))
	if err != nil {
		return err
	}
	if err := WriteHGRM(f, hist); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LinkLatest points results/latest at dir (best effort: a missing link
// costs nothing but convenience).
func LinkLatest(dir string) {
	latest := filepath.Join("results", "latest")
	rel, err := filepath.Rel("results", dir)
	if err != nil {
		return
	}
	tmp := latest + ".tmp"
	os.Remove(tmp)
	if os.Symlink(rel, tmp) == nil {
		if err := os.Rename(tmp, latest); err != nil {
			os.Remove(tmp)
		}
	}
}
