package wsconn

import (
	"strconv"
	"testing"

	"github.com/gorilla/websocket"
)

// TestPipelinedMessagesAreAllAnswered: messages that arrive together sit in
// the read buffer; the idle reader must not wait for more bytes first.
func TestPipelinedMessagesAreAllAnswered(t *testing.T) {
	f := newFixture(t)
	c := f.dial()
	n := 30
	if !InlineWrites {
		// Every answer waits in the queue (16) until the writer goroutine
		// runs, as over TLS: a burst up to the queue's size is answered.
		n = 16
	}
	for i := range n {
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if got := c.read(); string(got) != strconv.Itoa(i) {
			t.Fatalf("answer %d: %q", i, got)
		}
	}
}
