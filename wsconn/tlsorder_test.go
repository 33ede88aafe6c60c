package wsconn

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestTLSInlineWritesAfterAnIdleSpell: a TLS socket that got nothing for
// longer than WriteTimeout still gets its next frames, written by their
// sender, and its client's messages are still answered: the write
// deadline an inline write leaves standing (standingDeadline) has passed
// meanwhile and must not fail the next write.
func TestTLSInlineWritesAfterAnIdleSpell(t *testing.T) {
	const writeTimeout = 100 * time.Millisecond
	f := newFixtureTLS(t, Limits{QueueSize: 16, WriteTimeout: writeTimeout, PingInterval: 10 * time.Second}, true)
	c := f.dial()
	s := f.waitSockets(1)[0]
	for round := range 3 {
		for i := range 5 {
			want := fmt.Sprintf("round %d frame %d", round, i)
			s.Send(Message{Frame: TextFrame([]byte(want)), Kind: "change"})
			if got := c.read(); string(got) != want {
				t.Fatalf("read %q, want %q", got, want)
			}
		}
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte("echo me")); err != nil {
			t.Fatal(err)
		}
		if got := c.read(); string(got) != "echo me" {
			t.Fatalf("read %q, want the echo", got)
		}
		time.Sleep(2 * writeTimeout)
	}
	if s.Closing() {
		t.Fatal("the socket is closing after idle spells")
	}
}

// TestTLSFramesStayInOrderThroughTheQueue: frames to a TLS client that
// falls behind now and then arrive whole and in order, as the sender's
// inline writes give way to the writer's joined batches and back (the
// batches spend the room the inline writes count on).
func TestTLSFramesStayInOrderThroughTheQueue(t *testing.T) {
	const frames = 3000
	f := newFixtureTLS(t, Limits{QueueSize: frames, WriteTimeout: 5 * time.Second, PingInterval: 10 * time.Second}, true)
	c := f.dial()
	s := f.waitSockets(1)[0]
	read := make(chan error, 1)
	go func() {
		for i := range frames {
			if i%200 == 0 {
				time.Sleep(20 * time.Millisecond) // fall behind
			}
			_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				read <- err
				return
			}
			if want := fmt.Sprintf("%d:", i); !strings.HasPrefix(string(data), want) || len(data) != 4096 {
				read <- fmt.Errorf("frame %d: read %.12q… (%d bytes)", i, data, len(data))
				return
			}
		}
		read <- nil
	}()
	queued := 0
	for i := range frames {
		payload := []byte(fmt.Sprintf("%d:", i))
		payload = append(payload, strings.Repeat("p", 4096-len(payload))...)
		s.Send(Message{Frame: TextFrame(payload), Kind: "change"})
		if s.Writing() {
			queued++
		}
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d frames left to the writer", queued, frames)
}
