package clients

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"pushbench/event"
	"pushbench/internal/testnet"
	"pushbench/transport"
)

// BenchmarkReceive measures a subscriber's receive path — read, parse,
// deliver — per event, against a raw loopback server that writes canned
// bytes and allocates nothing per message, so the allocations reported are
// the client's. Polls carry 10 events each.
//
//	go test -run XXX -bench Receive -benchmem ./clients
func BenchmarkReceive(b *testing.B) {
	for _, tr := range transport.Names() {
		for _, payload := range []int{256, 4096} {
			b.Run(fmt.Sprintf("transport=%s/payload=%d", tr, payload), func(b *testing.B) {
				benchReceive(b, tr, payload)
			})
		}
	}
}

const pollBatch = 10

func benchReceive(b *testing.B, name string, payload int) {
	url := rawServer(b, name, payload)
	sub, err := New(name, Config{BaseURL: url, Interval: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	b.ReportAllocs()
	b.SetBytes(int64(payload))
	b.ResetTimer()
	err = sub.Run(ctx, func(batch Batch) {
		if n += len(batch.Events); n >= b.N {
			cancel()
		}
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
}

// rawServer serves transport's wire format forever from canned bytes: one
// event stream per connection, or one canned answer per poll request.
func rawServer(b *testing.B, name string, payload int) string {
	b.Helper()
	var msgs [][]byte
	for seq := uint64(1); seq <= 1000; seq++ {
		m, err := event.Encode(event.Event{Seq: seq, T: time.Now().UnixNano()}, payload)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	var stream []byte // what a stream repeats
	switch name {
	case transport.SSE:
		for i, m := range msgs {
			stream = fmt.Appendf(stream, "id: %d\ndata: %s\n\n", i+1, m)
		}
	case transport.WebSocket:
		for _, m := range msgs {
			stream = append(stream, 0x81) // FIN, text
			if len(m) < 126 {
				stream = append(stream, byte(len(m)))
			} else {
				stream = append(stream, 126, byte(len(m)>>8), byte(len(m)))
			}
			stream = append(stream, m...)
		}
	case transport.TCP:
		for _, m := range msgs {
			stream = append(append(stream, m...), '\n')
		}
	default:
		body := "[" + string(bytes.Join(msgs[:pollBatch], []byte(","))) + "]"
		stream = fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}

	addr := testnet.Serve(b, func(c net.Conn) { serveRaw(c, name, stream) })
	return "http://" + addr
}

func serveRaw(c net.Conn, name string, stream []byte) {
	defer c.Close()
	br := bufio.NewReader(c)
	key, err := readHead(br)
	if err != nil {
		return
	}
	switch name {
	case transport.SSE:
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
	case transport.WebSocket:
		h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			base64.StdEncoding.EncodeToString(h[:]))
		// The client's close frame ends the connection (no echo:
		// the client then stops at once instead of after its grace).
		go func() {
			br.ReadByte()
			c.Close()
		}()
	case transport.TCP:
		fmt.Fprint(c, tcpSwitch)
	default:
		for {
			if _, err := c.Write(stream); err != nil {
				return
			}
			if _, err := readHead(br); err != nil {
				return
			}
		}
	}
	for {
		if _, err := c.Write(stream); err != nil {
			return
		}
	}
}

// readHead reads a request head and returns its Sec-WebSocket-Key.
func readHead(br *bufio.Reader) (key string, err error) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return "", err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return key, nil
		}
		if k, ok := bytes.CutPrefix(line, []byte("Sec-WebSocket-Key: ")); ok {
			key = strings.TrimSpace(string(k))
		}
	}
}

// BenchmarkParsePoll measures the poll-body parser alone, per event.
func BenchmarkParsePoll(b *testing.B) {
	for _, payload := range []int{256, 65536} {
		b.Run(fmt.Sprintf("payload=%d", payload), func(b *testing.B) {
			parts := []string{gapMsg(1, 9)}
			for seq := uint64(10); seq < 10+pollBatch; seq++ {
				parts = append(parts, encodeSize(b, seq, payload))
			}
			body := []byte("[" + strings.Join(parts, ",") + "]")
			events := make([]event.Event, 0, pollBatch)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var err error
				if events, _, err = parsePoll(body, events[:0]); err != nil || len(events) != pollBatch {
					b.Fatal(len(events), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pollBatch), "ns/event")
		})
	}
}

// BenchmarkSend measures Send per message, against a raw loopback server
// that discards frames and lines and answers each POST /send with a canned
// 204, allocating nothing per message, so the allocations reported are the
// client's.
//
//	go test -run XXX -bench Send -benchmem ./clients
func BenchmarkSend(b *testing.B) {
	for _, tr := range transport.Names() {
		for _, payload := range []int{256, 4096} {
			b.Run(fmt.Sprintf("transport=%s/payload=%d", tr, payload), func(b *testing.B) {
				benchSend(b, tr, payload)
			})
		}
	}
}

func benchSend(b *testing.B, name string, payload int) {
	url := sinkServer(b, name)
	sub, err := New(name, Config{BaseURL: url, Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sub.Run(ctx, func(Batch) {}) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			b.Error(err)
		}
	}()
	<-sub.Subscribed()
	msg, err := event.AppendUpstream(nil, event.Upstream{From: 1, N: 1, T: time.Now().UnixNano()}, payload)
	if err != nil {
		b.Fatal(err)
	}
	// The first Send waits for a stream to be open.
	for sub.Send(ctx, msg) != nil {
		runtime.Gosched()
	}
	b.ReportAllocs()
	b.SetBytes(int64(payload))
	for b.Loop() {
		if err := sub.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// sinkServer serves transport's subscription once per connection — a
// short poll answered [], a long poll held, a stream opened with nothing
// on it — and then discards what the client sends, answering each POST
// /send with 204 without allocating.
func sinkServer(b *testing.B, name string) string {
	b.Helper()
	addr := testnet.Serve(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		key, post, err := readSinkHead(br)
		if err != nil {
			return
		}
		if post >= 0 {
			for err == nil && post >= 0 {
				if _, err = br.Discard(post); err == nil {
					_, err = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
				}
				if err == nil {
					_, post, err = readSinkHead(br)
				}
			}
			return
		}
		switch name {
		case transport.ShortPoll:
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
		case transport.SSE:
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
		case transport.WebSocket:
			h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
				base64.StdEncoding.EncodeToString(h[:]))
		case transport.TCP:
			fmt.Fprint(c, tcpSwitch)
		}
		_, _ = io.Copy(io.Discard, br) // until the client goes
	})
	return "http://" + addr
}

// readSinkHead reads a request head without allocating: the WebSocket key
// (only for an upgrade, which allocates once), and the Content-Length of a
// POST, or -1 for another request.
func readSinkHead(br *bufio.Reader) (key string, post int, err error) {
	post = -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return "", -1, err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			return key, post, nil
		case bytes.HasPrefix(line, []byte("POST ")):
			post = 0
		case bytes.HasPrefix(line, []byte("Content-Length: ")):
			post = 0
			for _, d := range line[len("Content-Length: "):] {
				post = post*10 + int(d-'0')
			}
		case bytes.HasPrefix(line, []byte("Sec-WebSocket-Key: ")):
			key = string(bytes.TrimSpace(line[len("Sec-WebSocket-Key: "):]))
		}
	}
}
