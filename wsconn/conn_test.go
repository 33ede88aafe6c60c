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
	const n = 30
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
