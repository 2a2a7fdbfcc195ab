package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestAppendExactSize(t *testing.T) {
	t.Parallel()
	events := []Event{
		{Seq: 1, T: 0},
		{Seq: 42, T: 1764081000123456789},
		{Seq: math.MaxUint64, T: math.MinInt64},
		{Seq: math.MaxUint64, T: math.MaxInt64},
		{Seq: 7, T: -1},
	}
	for _, e := range events {
		for size := MinSize; size <= MinSize+40; size++ {
			b, err := Encode(e, size)
			if err != nil {
				t.Fatalf("Encode(%+v, %d): %v", e, size, err)
			}
			if len(b) != size {
				t.Fatalf("Encode(%+v, %d) = %d bytes: %q", e, size, len(b), b)
			}
			if !json.Valid(b) {
				t.Fatalf("Encode(%+v, %d) is not valid JSON: %q", e, size, b)
			}
			if bytes.IndexByte(b, '\n') >= 0 {
				t.Fatalf("Encode(%+v, %d) contains a newline", e, size)
			}
			got, err := Decode(b)
			if err != nil || got != e {
				t.Fatalf("Decode(%q) = %+v, %v; want %+v", b, got, err, e)
			}
		}
	}
}

func TestEncodeKeysForOutsideTools(t *testing.T) {
	t.Parallel()
	b, err := Encode(Event{Seq: 3, T: 99}, 64)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Seq uint64 `json:"seq"`
		T   int64  `json:"t"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Seq != 3 || v.T != 99 {
		t.Fatalf("json.Unmarshal(%q) = %+v, %v", b, v, err)
	}
	if want := `{"seq":3,"t":99,"pad":"` + strings.Repeat("x", 64-25) + `"}`; string(b) != want {
		t.Fatalf("Encode = %q, want %q", b, want)
	}
}

func TestSizeLimits(t *testing.T) {
	t.Parallel()
	for _, size := range []int{-1, 0, MinSize - 1, MaxSize + 1} {
		if _, err := Encode(Event{Seq: 1}, size); !errors.Is(err, ErrSize) {
			t.Errorf("Encode(size %d) error = %v, want ErrSize", size, err)
		}
	}
	if _, err := Encode(Event{Seq: 0}, 64); !errors.Is(err, ErrMalformed) {
		t.Errorf("Encode(seq 0) error = %v, want ErrMalformed", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	bad := []string{
		``,
		`{}`,
		`{"seq":0,"t":1}`,
		`{"seq":01,"t":1}`,
		`{"seq":-1,"t":1}`,
		`{"seq":18446744073709551616,"t":1}`,
		`{"seq":1,"t":9223372036854775808}`,
		`{"seq":1,"t":-9223372036854775809}`,
		`{"seq":1,"t":-0}`,
		`{"seq":1,"t":}`,
		`{"seq":1,"t":1`,
		`{"seq":1,"t":1}x`,
		`{"seq":1,"t":1,"pad":"ab}`,
		`{"seq":1,"t":1,"pad":"a\"b"}`,
		`{"seq":1,"t":1,"pad":"a` + "\n" + `"}`,
		` {"seq":1,"t":1}`,
		`{"gap":[1,2]}`,
	}
	for _, s := range bad {
		if e, err := Decode([]byte(s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %+v, %v; want ErrMalformed", s, e, err)
		}
	}
	if e, err := Decode([]byte(`{"seq":1,"t":-9223372036854775808}`)); err != nil || e.T != math.MinInt64 {
		t.Errorf("Decode(min int64) = %+v, %v", e, err)
	}
}

func TestGapRoundTrip(t *testing.T) {
	t.Parallel()
	g := Gap{From: 5, To: 17}
	b := AppendGap(nil, g)
	if string(b) != `{"gap":[5,17]}` || !IsGap(b) || !json.Valid(b) {
		t.Fatalf("AppendGap = %q", b)
	}
	got, err := DecodeGap(b)
	if err != nil || got != g || got.Len() != 13 {
		t.Fatalf("DecodeGap(%q) = %+v, %v", b, got, err)
	}
	for _, s := range []string{`{"gap":[0,1]}`, `{"gap":[5,4]}`, `{"gap":[1]}`, `{"gap":[1,2]} `} {
		if _, err := DecodeGap([]byte(s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeGap(%q) error = %v", s, err)
		}
	}
	if IsGap([]byte(`{"seq":1,"t":1}`)) {
		t.Error("IsGap(event) = true")
	}
}

func FuzzDecode(f *testing.F) {
	for _, size := range []int{MinSize, 60, 64, 200} {
		b, _ := Encode(Event{Seq: 12345, T: 1764081000123456789}, size)
		f.Add(b)
	}
	f.Add([]byte(`{"seq":1,"t":-5   }`))
	f.Add([]byte(`{"gap":[1,2]}`))
	f.Add([]byte(`{"seq":99999999999999999999,"t":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%q) error %v does not wrap ErrMalformed", b, err)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("Decode accepted invalid JSON %q", b)
		}
		// Whatever Decode accepts must re-encode to the same size and
		// decode to the same event.
		if len(b) >= MinSize {
			again, err := Encode(e, len(b))
			if err != nil {
				t.Fatalf("Encode(%+v, %d): %v", e, len(b), err)
			}
			if back, err := Decode(again); err != nil || back != e {
				t.Fatalf("round trip %q -> %q -> %+v, %v", b, again, back, err)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 4096)
	var seq uint64
	for b.Loop() {
		seq++
		buf, _ = Append(buf[:0], Event{Seq: seq, T: 1764081000123456789}, 256)
	}
}

func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	msg, _ := Encode(Event{Seq: 123456, T: 1764081000123456789}, 256)
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeText decodes a 256-byte event padded with text: the
// padding check is most of the work.
func BenchmarkDecodeText(b *testing.B) {
	b.ReportAllocs()
	msg, _ := EncodePad(Event{Seq: 123456, T: 1764081000123456789}, 256, PadText)
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}
