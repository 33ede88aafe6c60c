package wsconn

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkReadEcho is the read side as it is: a client's 100-byte text
// message read by gorilla (through the parked socket's wake-up, or its
// waiting reader), checked as UTF-8, handed to the handler, and echoed by
// the transport's inline write; one round trip per op.
func BenchmarkReadEcho(b *testing.B) { readEcho(b, false) }

// BenchmarkReadEchoTLS is the same over TLS terminated in the server.
func BenchmarkReadEchoTLS(b *testing.B) { readEcho(b, true) }

func readEcho(b *testing.B, overTLS bool) {
	f := newFixtureTLS(b, Limits{QueueSize: 16, WriteTimeout: 2 * time.Second, PingInterval: 10 * time.Second}, overTLS)
	c := f.dial()
	msg := bytes.Repeat([]byte{'m'}, 100)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		if got := c.read(); len(got) != len(msg) {
			b.Fatalf("echo of %d bytes", len(got))
		}
	}
}
