package servers

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// chromiumBin returns the Chromium to run ($CHROMIUM, chromium,
// chromium-browser or google-chrome), or "".
func chromiumBin() string {
	if bin := os.Getenv("CHROMIUM"); bin != "" {
		return bin
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// cdpMessage is one message of the DevTools protocol: an answer (ID) or an
// event (Method).
type cdpMessage struct {
	ID        int             `json:"id"`
	Method    string          `json:"method"`
	SessionID string          `json:"sessionId"`
	Result    json.RawMessage `json:"result"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// cdp is a minimal DevTools protocol client on the browser's endpoint:
// calls one at a time, events kept until waited for.
type cdp struct {
	conn   *websocket.Conn
	last   int
	events []cdpMessage
}

func (c *cdp) read() (cdpMessage, error) {
	var m cdpMessage
	err := c.conn.ReadJSON(&m)
	return m, err
}

// call sends method to session ("": the browser) and returns its result.
func (c *cdp) call(session, method string, params any) (json.RawMessage, error) {
	c.last++
	msg := map[string]any{"id": c.last, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	if err := c.conn.WriteJSON(msg); err != nil {
		return nil, err
	}
	for {
		m, err := c.read()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		switch {
		case m.ID == c.last && m.Error != nil:
			return nil, fmt.Errorf("%s: %s", method, m.Error.Message)
		case m.ID == c.last:
			return m.Result, nil
		case m.Method != "":
			c.events = append(c.events, m)
		}
	}
}

// wait waits for the event method of session.
func (c *cdp) wait(session, method string) error {
	for i, m := range c.events {
		if m.SessionID == session && m.Method == method {
			c.events = append(c.events[:i], c.events[i+1:]...)
			return nil
		}
	}
	for {
		m, err := c.read()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", method, err)
		}
		if m.SessionID == session && m.Method == method {
			return nil
		}
		if m.Method != "" {
			c.events = append(c.events, m)
		}
	}
}

// open opens url in a new window of its own (so no page is a background
// tab whose timers the browser throttles) and returns its session once the
// page has loaded.
func (c *cdp) open(url string) (string, error) {
	res, err := c.call("", "Target.createTarget", map[string]any{"url": "about:blank", "newWindow": true})
	if err != nil {
		return "", err
	}
	var target struct{ TargetID string }
	if err := json.Unmarshal(res, &target); err != nil {
		return "", err
	}
	if res, err = c.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}); err != nil {
		return "", err
	}
	var attached struct{ SessionID string }
	if err := json.Unmarshal(res, &attached); err != nil {
		return "", err
	}
	s := attached.SessionID
	if _, err := c.call(s, "Page.enable", map[string]any{}); err != nil {
		return "", err
	}
	if _, err := c.call(s, "Page.navigate", map[string]any{"url": url}); err != nil {
		return "", err
	}
	return s, c.wait(s, "Page.loadEventFired")
}

// eval evaluates expr in session's page, awaiting the promise it returns,
// and returns its string value.
func (c *cdp) eval(session, expr string) (string, error) {
	res, err := c.call(session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true})
	if err != nil {
		return "", err
	}
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return "", err
	}
	if e := r.ExceptionDetails; e != nil {
		return "", fmt.Errorf("%s %s", e.Text, e.Exception.Description)
	}
	s, ok := r.Result.Value.(string)
	if !ok {
		return "", fmt.Errorf("result %v is not a string", r.Result.Value)
	}
	return s, nil
}

// startChromium starts a headless Chromium in a process group of its own
// and connects to its DevTools endpoint. The returned stop kills the whole
// group and waits until it is gone.
func startChromium(t *testing.T, bin string, deadline time.Time) (*cdp, func()) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-port=0", "about:blank")
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	pw.Close()
	endpoint := make(chan string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "DevTools listening on "); ok {
				endpoint <- u
			}
		}
		close(endpoint)
	}()
	var conn *websocket.Conn
	stop := func() {
		if conn != nil {
			conn.Close()
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		pr.Close() // ends the reader even if a process outside the group kept stderr open
		<-read
	}
	u, ok := <-endpoint
	if !ok {
		stop()
		t.Fatalf("%s printed no DevTools endpoint", bin)
	}
	d := websocket.Dialer{HandshakeTimeout: ioTimeout}
	conn, _, err = d.Dial(u, nil)
	if err != nil {
		stop()
		t.Fatalf("DevTools %s: %v", u, err)
	}
	conn.SetReadLimit(64 << 20)
	_ = conn.SetReadDeadline(deadline)
	return &cdp{conn: conn}, stop
}

// countsRise resolves, once every card's counter has reached 3, to the
// cards' counters, states and details as JSON.
const countsRise = `new Promise(resolve => {
  const check = () => {
    const cards = {};
    let ok = true;
    for (const card of document.querySelectorAll('[data-transport]')) {
      const n = Number(card.querySelector('.count').textContent);
      cards[card.dataset.transport] = {n, state: card.querySelector('.state').textContent, info: card.querySelector('.info').textContent};
      if (!(n >= 3)) ok = false;
    }
    if (ok && Object.keys(cards).length === 4) resolve(JSON.stringify(cards));
    else setTimeout(check, 100);
  };
  check();
})`

// refusedFrom tries the transports from the page against a server that
// does not allow its origin and resolves to what the page saw.
const refusedFrom = `(async base => {
  const out = {};
  try { await fetch(base + '/poll'); out.fetch = 'read'; } catch (e) { out.fetch = 'blocked'; }
  out.ws = await new Promise(r => {
    const s = new WebSocket(base.replace(/^http/, 'ws') + '/ws');
    s.onopen = () => { s.close(); r('open'); };
    s.onclose = e => r('closed ' + e.code);
  });
  out.sse = await new Promise(r => {
    const es = new EventSource(base + '/sse');
    es.onopen = () => { es.close(); r('open'); };
    es.onerror = () => { const st = es.readyState; es.close(); r('error ' + st); };
  });
  return JSON.stringify(out);
})`

// TestLivePageChromium loads the live page in a headless Chromium, on the
// server's own origin and from another origin (?server=, allowed there by
// CORS), with a publisher running, and checks that every transport's
// counter rises; then that a server without CORS keeps a page on another
// origin out (fetch and EventSource blocked by the browser, the WebSocket
// refused by the server). Skipped without Chromium; every Chromium process
// is killed (its process group) at the end.
func TestLivePageChromium(t *testing.T) {
	bin := chromiumBin()
	if bin == "" {
		t.Skip("no chromium here: the live page was not loaded in a browser")
	}
	page := startServer(t, Config{}, nil)
	other := startServer(t, Config{CORS: []string{page.url}}, nil)
	closed := startServer(t, Config{}, nil)
	for _, ts := range []*testServer{page, other} {
		if err := ts.StartPublisher(PublishConfig{Rate: 20, Payload: 100}); err != nil {
			t.Fatal(err)
		}
	}

	c, stop := startChromium(t, bin, time.Now().Add(2*ioTimeout))
	defer stop()
	for _, tt := range []struct{ name, url string }{
		{"same origin", page.url + "/"},
		{"another origin", page.url + "/?server=" + other.url},
	} {
		s, err := c.open(tt.url)
		if err != nil {
			t.Fatalf("%s: open %s: %v", tt.name, tt.url, err)
		}
		got, err := c.eval(s, countsRise)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var cards map[string]struct {
			N           int
			State, Info string
		}
		if err := json.Unmarshal([]byte(got), &cards); err != nil {
			t.Fatalf("%s: %q: %v", tt.name, got, err)
		}
		for name, card := range cards {
			if !strings.HasSuffix(card.Info, " · errors 0") {
				t.Errorf("%s: %s: %+v", tt.name, name, card)
			}
		}
		t.Logf("%s: %s", tt.name, got)
	}
	if st := other.Stats().CORS; st.Allowed == 0 || st.Refused != 0 {
		t.Errorf("the server the page reads from another origin: cors %+v", st)
	}

	s, err := c.open(page.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.eval(s, refusedFrom+"("+fmt.Sprintf("%q", closed.url)+")")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"fetch":"blocked","ws":"closed 1006","sse":"error 2"}`; got != want {
		t.Errorf("a page on another origin against a server without CORS saw %s, want %s", got, want)
	}
	st := closed.Stats()
	if st.CORS.Refused != 3 || st.CORS.Allowed != 0 || st.Transports["ws"].BadRequests != 1 {
		t.Errorf("the server without CORS: cors %+v, ws bad requests %d; want 3 refused (poll, ws, sse), the ws one a bad request",
			st.CORS, st.Transports["ws"].BadRequests)
	}
}
