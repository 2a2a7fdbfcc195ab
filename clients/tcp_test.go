package clients

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"pushbench/transport"
)

// upgradeServer accepts one connection at a time on loopback, reports the
// upgrade request it read (up to its blank line, byte for byte) and writes
// answer. It then holds the connection until the client closes it.
func upgradeServer(t *testing.T, answer string) (url string, requests <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reqs := make(chan string, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var req strings.Builder
				for {
					line, err := br.ReadString('\n')
					req.WriteString(line)
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				reqs <- req.String()
				if _, err := io.WriteString(c, answer); err != nil {
					return
				}
				io.Copy(io.Discard, br) // until the client closes
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return "http://" + ln.Addr().String(), reqs
}

// TestTCPWireExact: the client writes exactly the upgrade request of
// protocol.md, and reads exactly the 101 answer and then P + 1 bytes per
// event (the event and its "\n"), one batch per line.
func TestTCPWireExact(t *testing.T) {
	t.Parallel()
	const n = 50
	answer := tcpSwitch
	for seq := uint64(1); seq <= n; seq++ {
		answer += ev(seq) + "\n"
	}
	url, reqs := upgradeServer(t, answer)
	counters := new(Counters)
	var down uint64
	c := startClient(t, transport.TCP, url, Config{Counters: counters, Since: 0}, func(b batch) bool {
		if b.seqs[0] == n {
			down = counters.BytesDown.Load() // nothing more is on the wire
			return true
		}
		return false
	})
	var want []uint64
	for seq := uint64(1); seq <= n; seq++ {
		want = append(want, seq)
	}
	checkBatches(t, c.collect(t), one(want...))
	host := strings.TrimPrefix(url, "http://")
	wantReq := "GET /tcp?since=0 HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: pushbench-tcp\r\n\r\n"
	if got := <-reqs; got != wantReq {
		t.Errorf("upgrade request\n got %q\nwant %q", got, wantReq)
	}
	if up := counters.BytesUp.Load(); up != uint64(len(wantReq)) {
		t.Errorf("bytes up %d, want %d (the request)", up, len(wantReq))
	}
	if want := uint64(len(tcpSwitch)) + n*(testPayload+1); down != want {
		t.Errorf("bytes down %d, want %d = %d (answer) + %d × (%d + 1)", down, want, len(tcpSwitch), n, testPayload)
	}
	if r := counters.Requests.Load(); r != 1 {
		t.Errorf("requests %d, want 1", r)
	}
}

// TestTCPBadUpgrade: an answer that is not the pushbench-tcp upgrade ends
// Run at once with a StatusError.
func TestTCPBadUpgrade(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, answer string
		code         int
		reason       string
	}{
		{"200", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "no pushbench-tcp upgrade"},
		{"websocket", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 101, `upgrade to "websocket"`},
		{"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\nno such path", 404, "no such path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, _ := upgradeServer(t, tc.answer)
			c := startClient(t, transport.TCP, url, Config{}, nil)
			err := c.wait(t)
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tc.code || !strings.Contains(se.Reason, tc.reason) {
				t.Fatalf("Run error = %v, want a StatusError %d with %q", err, tc.code, tc.reason)
			}
			select {
			case <-c.sub.Subscribed():
				t.Error("Subscribed closed without an upgrade")
			default:
			}
		})
	}
}
