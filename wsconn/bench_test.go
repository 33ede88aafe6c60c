package wsconn

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
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
		sendToAll(socks, msg)
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

// BenchmarkSend is the sender's side of a delivery alone: one 300-byte
// frame sent to each of 100 sockets per op, each written by the sender
// itself, while every client reads the raw bytes off its TCP connection
// without decoding them (so that the clients' work, the larger part of
// BenchmarkFanout, barely counts).
func BenchmarkSend(b *testing.B) { sendOnly(b, false) }

// BenchmarkSendTLS is the same over TLS terminated in the server: the
// room check, the record's encryption and its write.
func BenchmarkSendTLS(b *testing.B) { sendOnly(b, true) }

func sendOnly(b *testing.B, overTLS bool) {
	const sockets = 100
	f := newFixtureTLS(b, Limits{QueueSize: 1024, WriteTimeout: 2 * time.Second, PingInterval: time.Minute}, overTLS)
	var wg sync.WaitGroup
	for range sockets {
		raw := f.dialDiscarding()
		wg.Go(func() { _, _ = io.Copy(io.Discard, raw) })
	}
	socks := f.waitSockets(sockets)
	msg := bytes.Repeat([]byte{'m'}, 300)
	b.ReportAllocs()
	for b.Loop() {
		sendToAll(socks, msg)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sockets), "ns/delivery")
	f.close()
	wg.Wait()
}

// dialDiscarding upgrades a connection to f's server (over TLS if it
// serves TLS) and returns the TCP connection under it, for a reader that
// discards what arrives.
func (f *fixture) dialDiscarding() net.Conn {
	f.t.Helper()
	raw, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { raw.Close() })
	var conn net.Conn = raw
	if f.srv.TLS != nil {
		cfg := f.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		cfg.ServerName = "example.com"
		conn = tls.Client(raw, cfg)
	}
	req := "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		f.t.Fatal(err)
	}
	// Read the answer byte by byte, so that nothing after it is taken
	// from the connection the discarding reader will read.
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := conn.Read(one); err != nil {
			f.t.Fatal(err)
		}
		head = append(head, one[0])
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		f.t.Fatalf("upgrade answered %q", head)
	}
	return raw
}

// sendToAll sends msg to every socket as one shared frame, as the relay's
// fan-out does.
func sendToAll(socks []*Socket, msg []byte) {
	fr := TextFrame(msg)
	for _, s := range socks {
		fr.Retain()
		s.Send(Message{Frame: fr, Kind: "change"})
	}
	fr.Release()
}
