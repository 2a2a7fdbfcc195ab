package event

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"
)

func TestTextPad(t *testing.T) {
	t.Parallel()
	txt := text()
	if len(txt) != textLen {
		t.Fatalf("text is %d bytes, want %d", len(txt), textLen)
	}
	for i, c := range txt {
		if !padByte[c] || c == '"' {
			t.Fatalf("text byte %d is %q", i, c)
		}
	}
	var prev []byte
	for seq := uint64(1); seq <= 200; seq++ {
		for _, size := range []int{MinSize, MinSize + padKeyLen, 64, 256, 4096} {
			e := Event{Seq: seq, T: 1764081000000000000 + int64(seq)*1e6}
			b, err := EncodePad(e, size, PadText)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != size || !json.Valid(b) {
				t.Fatalf("EncodePad(%+v, %d) = %d bytes, valid %v: %q", e, size, len(b), json.Valid(b), b)
			}
			x, _ := Encode(e, size)
			if bytes.Contains(x, []byte(`"pad":"x`)) == bytes.Equal(b, x) {
				// With padding, the padding differs; with none (no
				// room, or an empty "pad"), both are the same.
				t.Fatalf("size %d: text %q, x %q", size, b, x)
			}
			if got, err := Decode(b); err != nil || got != e {
				t.Fatalf("Decode(%q) = %+v, %v; want %+v", b, got, err, e)
			}
			if size == 256 {
				if bytes.Equal(b[len(b)-100:], prev) {
					t.Fatalf("seq %d has the padding of seq %d", seq, seq-1)
				}
				prev = b[len(b)-100:]
			}
		}
	}
	// The same in every process: the text is built from a fixed sequence.
	b, _ := EncodePad(Event{Seq: 1, T: 0}, 128, PadText)
	if want := `{"seq":1,"t":0,"pad":"` + string(TextPad(1, 128-24)) + `"}`; string(b) != want {
		t.Fatalf("EncodePad = %q, want %q", b, want)
	}
	if got := string(TextPad(1, 40)); got != textGolden {
		t.Errorf("TextPad(1, 40) = %q, want %q (the text must not change between versions: runs compare byte for byte)", got, textGolden)
	}
}

// textGolden is the start of seq 1's text padding.
const textGolden = "en ok channel true: offset status 23692 "

func TestParsePad(t *testing.T) {
	t.Parallel()
	for _, p := range []Pad{PadX, PadText} {
		if got, err := ParsePad(p.String()); err != nil || got != p {
			t.Errorf("ParsePad(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParsePad("zeros"); err == nil || !strings.Contains(err.Error(), "want x or text") {
		t.Errorf("ParsePad(zeros) = %v", err)
	}
}

// TestDecodeForeignPad: a printable padding that is neither 'x' nor this
// seq's text is still accepted (the table path); a backslash or a control
// byte is not.
func TestDecodeForeignPad(t *testing.T) {
	t.Parallel()
	b, _ := EncodePad(Event{Seq: 7, T: 1}, 200, PadText)
	// Seq 8 with seq 7's text: same length (one digit).
	b8 := bytes.Replace(b, []byte(`"seq":7`), []byte(`"seq":8`), 1)
	if e, err := Decode(b8); err != nil || e.Seq != 8 {
		t.Fatalf("Decode(foreign pad) = %+v, %v", e, err)
	}
	for _, c := range []byte{'\\', 0x1f, 0x7f, 0x80, 0xff} {
		bad := bytes.Clone(b8)
		bad[len(bad)-10] = c
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode accepted padding byte %#x", c)
		}
	}
}

// TestTextPadCompression measures how gzip -6 compresses 1,000
// consecutive 256-byte events, padded with 'x' and with text, the ways the
// transports compress them: each message on its own (a gzip poll answer of
// one event; raw deflate without context takeover as permessage-deflate
// sends it), as one stream flushed after every event (SSE) and as one body
// (a poll answer of all of them). The figures
// are in docs/protocol.md; the bounds here only catch a padding that stops
// looking like text.
func TestTextPadCompression(t *testing.T) {
	t.Parallel()
	const n, size = 1000, 256
	ratios := map[Pad][4]float64{}
	for _, pad := range []Pad{PadX, PadText} {
		var raw, perGzip, perDeflate int
		var stream, batch bytes.Buffer
		sz, _ := gzip.NewWriterLevel(&stream, gzip.DefaultCompression)
		bz, _ := gzip.NewWriterLevel(&batch, gzip.DefaultCompression)
		// One writer of each kind, Reset per message: the same output as a
		// new one, without allocating 800 KiB per message.
		var one bytes.Buffer
		z, _ := gzip.NewWriterLevel(&one, gzip.DefaultCompression)
		f, _ := flate.NewWriter(&one, flate.DefaultCompression)
		for seq := uint64(1); seq <= n; seq++ {
			b, _ := EncodePad(Event{Seq: seq, T: 1764081000000000000 + int64(seq)*1e7}, size, pad)
			raw += len(b)
			one.Reset()
			z.Reset(&one)
			z.Write(b)
			z.Close()
			perGzip += one.Len()
			one.Reset()
			f.Reset(&one)
			f.Write(b)
			f.Flush()
			perDeflate += one.Len() - 4 // permessage-deflate drops the 00 00 ff ff tail
			sz.Write(b)
			sz.Flush()
			bz.Write(b)
		}
		sz.Close()
		bz.Close()
		r := [4]float64{float64(raw) / float64(perGzip), float64(raw) / float64(perDeflate),
			float64(raw) / float64(stream.Len()), float64(raw) / float64(batch.Len())}
		ratios[pad] = r
		t.Logf("pad %-4s: %d bytes; gzip per message %d (%.2fx), deflate per message %d (%.2fx), one gzip stream flushed per event %d (%.2fx), one gzip body %d (%.2fx)",
			pad, raw, perGzip, r[0], perDeflate, r[1], stream.Len(), r[2], batch.Len(), r[3])
	}
	x, txt := ratios[PadX], ratios[PadText]
	if txt[1] < 1.1 || txt[1] > 2.5 || txt[2] < 1.5 || txt[2] > 4 || x[1] < 2*txt[1] {
		t.Errorf("text padding compresses %.2fx per message and %.2fx as a stream ('x': %.2fx, %.2fx): not like text", txt[1], txt[2], x[1], x[2])
	}
}

// BenchmarkDecodeForeignPad decodes a 256-byte event whose printable
// padding is not the one Encode writes for its seq: the table path.
func BenchmarkDecodeForeignPad(b *testing.B) {
	b.ReportAllocs()
	msg, _ := EncodePad(Event{Seq: 123456, T: 1764081000123456789}, 256, PadText)
	msg = bytes.Replace(msg, []byte("123456"), []byte("123457"), 1)
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestValidPad checks the eight-bytes-at-a-time check against the table for
// every byte value at every position of a word and in the tail.
func TestValidPad(t *testing.T) {
	t.Parallel()
	base := bytes.Repeat([]byte("ab cd:ef"), 3)
	for _, n := range []int{0, 1, 7, 8, 9, 16, 23} {
		for pos := range n {
			for c := range 256 {
				b := bytes.Clone(base[:n])
				b[pos] = byte(c)
				if got, want := validPad(b), padByte[c]; got != want {
					t.Fatalf("validPad(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

// BenchmarkPadCheck compares the padding checks on 200 bytes of text:
// the byte loop Decode had before text padding, the table, and validPad.
func BenchmarkPadCheck(b *testing.B) {
	pad := TextPad(99, 200)
	b.Run("loop", func(b *testing.B) {
		for b.Loop() {
			for _, c := range pad {
				if c < 0x20 || c == '\\' || c >= 0x7f {
					b.Fatal(c)
				}
			}
		}
	})
	b.Run("table", func(b *testing.B) {
		for b.Loop() {
			for _, c := range pad {
				if !padByte[c] {
					b.Fatal(c)
				}
			}
		}
	})
	b.Run("words", func(b *testing.B) {
		for b.Loop() {
			if !validPad(pad) {
				b.Fatal()
			}
		}
	})
	b.Run("equal", func(b *testing.B) {
		for b.Loop() {
			if !bytes.Equal(pad, TextPad(99, 200)) {
				b.Fatal()
			}
		}
	})
}
