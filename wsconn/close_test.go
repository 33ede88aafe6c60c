package wsconn

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The close frames gorilla would write itself are the transport's to
// write (readerConn): each reaches the client, with the right code.

// TestClientCloseIsEchoed: a client's close comes back with its code, and
// the socket ends with it.
func TestClientCloseIsEchoed(t *testing.T) {
	f := newFixture(t)
	c := f.dial()
	f.waitSockets(1)
	if err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if code := c.expectClose(); code != websocket.CloseNormalClosure {
		t.Errorf("echoed close %d, want 1000", code)
	}
	if code := f.endCode(); code != websocket.CloseNormalClosure {
		t.Errorf("socket ended with %d, want 1000", code)
	}
}

// TestOversizedMessageIsRefused: a message over the handler's read limit
// closes the socket with 1009.
func TestOversizedMessageIsRefused(t *testing.T) {
	f := newFixture(t)
	c := f.dial()
	if err := c.ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte{'x'}, testReadLimit+1)); err != nil {
		t.Fatal(err)
	}
	if code := c.expectClose(); code != websocket.CloseMessageTooBig {
		t.Errorf("close %d, want 1009", code)
	}
	if code := f.endCode(); code != websocket.CloseMessageTooBig {
		t.Errorf("socket ended with %d, want 1009", code)
	}
}

// TestInvalidTextIsRefused: a text message that is not UTF-8 closes the
// socket with 1007 (RFC 6455 §8.1).
func TestInvalidTextIsRefused(t *testing.T) {
	f := newFixture(t)
	c := f.dial()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte{'o', 'k', 0xff}); err != nil {
		t.Fatal(err)
	}
	if code := c.expectClose(); code != websocket.CloseInvalidFramePayloadData {
		t.Errorf("close %d, want 1007", code)
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
