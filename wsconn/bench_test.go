package wsconn

import (
	"bytes"
	"sync"
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

// BenchmarkFanout is one frame sent to 100 sockets, each read by its
// client, per op: the shared frame, the senders' inline writes or the
// writer goroutines, and the clients' reads.
func BenchmarkFanout(b *testing.B) { fanout(b, false) }

// BenchmarkFanoutTLS is the same over TLS terminated in the server.
func BenchmarkFanoutTLS(b *testing.B) { fanout(b, true) }

func fanout(b *testing.B, overTLS bool) {
	const sockets = 100
	f := newFixtureTLS(b, Limits{QueueSize: 16, WriteTimeout: 2 * time.Second, PingInterval: 10 * time.Second}, overTLS)
	got := make(chan struct{}, sockets)
	clients := make([]*client, sockets)
	for i := range clients {
		clients[i] = f.dial()
	}
	socks := f.waitSockets(sockets)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for {
				if _, _, err := c.ws.ReadMessage(); err != nil {
					return
				}
				got <- struct{}{}
			}
		})
	}
	msg := bytes.Repeat([]byte{'m'}, 300)
	b.ReportAllocs()
	for b.Loop() {
		fr := TextFrame(msg)
		for _, s := range socks {
			fr.Retain()
			s.Send(Message{Frame: fr, Kind: "change"})
		}
		fr.Release()
		for range sockets {
			<-got
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sockets), "ns/delivery")
	for _, c := range clients {
		c.ws.Close()
	}
	wg.Wait()
}
