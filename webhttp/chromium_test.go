package webhttp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chromiumPage makes one request of each kind, in order: a fetch() poll, a
// fetch() POST of a message, an EventSource and a WebSocket upgrade.
const chromiumPage = `<!doctype html><html><body><script>
(async () => {
  await fetch('/poll?since=0');
  await fetch('/send?room=0', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"from":0,"n":1,"t":1}'});
  await new Promise(r => { const es = new EventSource('/sse?since=0'); es.onmessage = es.onerror = () => { es.close(); r(); }; });
  new WebSocket('ws://' + location.host + '/ws?since=0');
})();
</script></body></html>`

// libraryFields are written by the HTTP library (net/http, gorilla), not by
// the profile.
var libraryFields = map[string]bool{
	"host": true, "content-length": true, "upgrade": true, "sec-websocket-key": true, "sec-websocket-version": true,
	"sec-websocket-extensions": true,
}

// substituted are the profile's fields whose values differ from a headless
// Chromium's on purpose (docs/http.md): desktop Chrome on Windows, not
// HeadlessChrome on Linux, and the page's origin.
var substituted = map[string]bool{
	"user-agent": true, "sec-ch-ua": true, "sec-ch-ua-platform": true, "referer": true, "origin": true,
}

// TestBrowserProfileMatchesChromium captures the requests a real headless
// Chromium sends for each kind and checks that the browser profile has the
// same fields in the same order, with the same values except the
// substituted ones. It needs chromium (or chromium-browser, or $CHROMIUM)
// and skips without it; .ci/run installs it.
func TestBrowserProfileMatchesChromium(t *testing.T) {
	bin := os.Getenv("CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if bin != "" {
			break
		}
		if p, err := exec.LookPath(name); err == nil {
			bin = p
		}
	}
	if bin == "" {
		t.Skip("no chromium here: the browser profile was not compared with a real browser")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	captured := make(chan []string, 8) // one request's header lines
	var wg sync.WaitGroup
	defer func() { ln.Close(); wg.Wait() }() // after chromium has gone (below)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveCapture(c, captured) })
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--no-first-run", "--user-data-dir="+t.TempDir(), "--remote-debugging-port=0",
		"http://"+ln.Addr().String()+"/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { cancel(); <-exited }()

	want := map[string]Kind{"/poll": Fetch, "/send": Send, "/sse": EventSource, "/ws": WebSocket}
	origin := "http://" + ln.Addr().String()
	for len(want) > 0 {
		var lines []string
		select {
		case lines = <-captured:
		case <-ctx.Done():
			t.Fatalf("chromium did not make every request in time; missing %v", want)
		}
		path, _, _ := strings.Cut(strings.Fields(lines[0])[1], "?")
		k, ok := want[path]
		if !ok {
			continue // the page itself, favicon
		}
		delete(want, path)
		var got []Field
		for _, l := range lines[1:] {
			name, value, _ := strings.Cut(l, ": ")
			if libraryFields[strings.ToLower(name)] || (k == WebSocket && name == "Connection") {
				continue
			}
			got = append(got, Field{name, value})
		}
		prof := Browser().RequestFields(k, origin, false)
		if len(got) != len(prof) {
			t.Errorf("%v: chromium sent %d fields, the profile has %d:\nchromium: %v\nprofile:  %v", k, len(got), len(prof), got, prof)
			continue
		}
		for i := range got {
			if got[i].Name != prof[i].Name {
				t.Errorf("%v field %d: chromium %q, profile %q", k, i, got[i].Name, prof[i].Name)
			} else if !substituted[strings.ToLower(got[i].Name)] && got[i].Value != prof[i].Value {
				t.Errorf("%v %s: chromium %q, profile %q", k, got[i].Name, got[i].Value, prof[i].Value)
			}
		}
		t.Logf("%v: chromium %d header bytes, profile %d (beyond Host and the library's fields)", k, FieldBytes(got), FieldBytes(prof))
	}
}

// serveCapture reads requests on c, hands each one's header lines to out
// and answers just enough for the page to go on.
func serveCapture(c net.Conn, out chan<- []string) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var lines []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if l = strings.TrimRight(l, "\r\n"); l == "" {
				break
			}
			lines = append(lines, l)
		}
		if len(lines) == 0 || len(strings.Fields(lines[0])) < 2 {
			return
		}
		select {
		case out <- lines:
		default:
		}
		path := strings.Fields(lines[0])[1]
		var err error
		switch {
		case path == "/":
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(chromiumPage), chromiumPage)
		case strings.HasPrefix(path, "/send"):
			n := 0
			for _, l := range lines {
				if v, ok := strings.CutPrefix(l, "Content-Length: "); ok {
					n, _ = strconv.Atoi(v)
				}
			}
			if _, err = io.ReadFull(br, make([]byte, n)); err == nil {
				_, err = fmt.Fprint(c, "HTTP/1.1 204 No Content\r\n\r\n")
			}
		case strings.HasPrefix(path, "/poll"):
			_, err = fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
		case strings.HasPrefix(path, "/sse"):
			_, _ = fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\nid: 1\ndata: x\n\n")
			return
		default:
			_, _ = fmt.Fprint(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		if err != nil {
			return
		}
	}
}
