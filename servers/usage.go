package servers

import (
	"fmt"
	"io"
)

// Usage writes what `pushbench serve --help` says before its flags.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pushbench serve [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Serves the event hub over /poll, /longpoll, /sse, /ws and /tcp, clients' messages")
	fmt.Fprintln(w, "on /send, /ws and /tcp, /stats and /control/{start,stop,gc} (docs/protocol.md; a")
	fmt.Fprintln(w, "run is a broadcast, a chat or a game), until SIGINT or SIGTERM.")
	fmt.Fprintln(w, "Prints 'pushbench serve: listening on http://ADDR' (https:// with --tls) once")
	fmt.Fprintln(w, "it accepts connections. The polls and SSE also speak HTTP/2: h2 over TLS,")
	fmt.Fprintln(w, "h2c with prior knowledge without; WebSocket and /tcp are HTTP/1.1 upgrades.")
	fmt.Fprintln(w, "GET / is a live page that subscribes with every transport. WebSocket and /tcp")
	fmt.Fprintln(w, "accept same-origin pages only; --cors ORIGIN (repeatable, or *) allows others,")
	fmt.Fprintln(w, "with CORS headers and preflight on the polls, SSE, /send and /stats.")
	fmt.Fprintln(w, "--cut-every D ends every SSE stream, WebSocket and /tcp connection D after it")
	fmt.Fprintln(w, "opened, as a deploy would; clients resume from the ring (Last-Event-ID, since=).")
	fmt.Fprintln(w, "--sse-retry D starts every SSE stream with retry: <ms>, the time an EventSource")
	fmt.Fprintln(w, "waits before it reconnects (Chromium's default without it: 3000 ms).")
	fmt.Fprintln(w)
}
