package servers

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gorilla/websocket"
)

// BenchmarkNewPreparedMessage measures what the WebSocket dispatcher pays
// once per event, whatever the number of connections: gorilla frames the
// message through a throw-away connection with its own write buffer.
func BenchmarkNewPreparedMessage(b *testing.B) {
	for _, p := range []int{256, 4096, 65536} {
		b.Run(fmt.Sprintf("payload=%d", p), func(b *testing.B) {
			data := bytes.Repeat([]byte{'x'}, p)
			b.ReportAllocs()
			b.SetBytes(int64(p))
			for b.Loop() {
				if _, err := websocket.NewPreparedMessage(websocket.TextMessage, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
