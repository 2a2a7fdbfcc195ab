package servers

// The live page at GET /: one self-contained HTML file (inline CSS and
// script, nothing fetched from elsewhere) that subscribes with every
// browser transport — EventSource on /sse, WebSocket on /ws, a fetch loop
// on /longpoll and a fetch every second on /poll — and shows the events
// arriving, so a user can watch `pushbench serve --rate 5` in a browser.
// With ?server=URL it subscribes to another pushbench server instead,
// which then needs this page's origin in its --cors (docs/protocol.md).

import (
	_ "embed"
	"net/http"
	"strconv"
)

//go:embed live/index.html
var livePage []byte

// serveLive serves the live page: GET or HEAD, text/html, revalidated on
// every load (Cache-Control: no-cache) so a new binary's page is never
// stale.
func serveLive(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(w, nil, http.StatusMethodNotAllowed, "/: method %s not allowed (want GET)", r.Method)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(livePage)))
	_, _ = w.Write(livePage)
}
