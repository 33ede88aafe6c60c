package wsconn

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The close frames gorilla would write itself are the transport's to
// write (readerConn): each reaches the client, with the right code.

// TestCloseCodes: what a client does, and the close frame it gets back,
// which is also the code the socket ends with: its own close echoed, 1009
// for a message over the handler's read limit, 1007 for a text message
// that is not UTF-8 (RFC 6455 §8.1); over plain TCP and over TLS, where
// the socket is parked between messages too.
func TestCloseCodes(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		name := "plain"
		if overTLS {
			name = "TLS"
		}
		t.Run(name, func(t *testing.T) { testCloseCodes(t, overTLS) })
	}
}

func testCloseCodes(t *testing.T, overTLS bool) {
	for _, tc := range []struct {
		name string
		do   func(ws *websocket.Conn) error
		want int
	}{
		{"client close echoed", func(ws *websocket.Conn) error {
			return ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		}, websocket.CloseNormalClosure},
		{"oversized message", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte{'x'}, testReadLimit+1))
		}, websocket.CloseMessageTooBig},
		{"invalid text", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.TextMessage, []byte{'o', 'k', 0xff})
		}, websocket.CloseInvalidFramePayloadData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureTLS(t, Limits{QueueSize: 16, WriteTimeout: 2 * time.Second, PingInterval: 10 * time.Second}, overTLS)
			c := f.dial()
			socks := f.waitSockets(1)
			if f.tr.Polling() {
				waitFor(t, "the socket to park", socks[0].Parked)
			}
			if err := tc.do(c.ws); err != nil {
				t.Fatal(err)
			}
			if code := c.expectClose(); code != tc.want {
				t.Errorf("close %d, want %d", code, tc.want)
			}
			if code := f.endCode(); code != tc.want {
				t.Errorf("socket ended with %d, want %d", code, tc.want)
			}
		})
	}
}

// TestPingIsAnsweredInOrder: a client's ping between messages is answered
// through the socket's queue, and the messages still echo in order.
func TestPingIsAnsweredInOrder(t *testing.T) {
	f := newFixture(t)
	c := f.dial()
	pong := make(chan string, 1)
	c.ws.SetPongHandler(func(data string) error { pong <- data; return nil })
	for _, m := range []string{"one", "two"} {
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if err := c.ws.WriteControl(websocket.PingMessage, []byte("p-"+m), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"one", "two"} {
		if got := c.read(); string(got) != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	select {
	case p := <-pong:
		if p != "p-one" && p != "p-two" {
			t.Errorf("pong %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Error("no pong")
	}
}
