//go:build linux && !nellis_portable

package wsconn

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func parked(socks []*Socket) int {
	n := 0
	for _, s := range socks {
		if s.Parked() {
			n++
		}
	}
	return n
}

// TestFailedPollerHandsSocketsBack: if the epoll set ever fails, every
// parked socket gets its reader goroutine back and keeps working.
func TestFailedPollerHandsSocketsBack(t *testing.T) {
	f := newFixture(t)
	if !f.tr.Polling() {
		t.Fatal("no idle poller on linux")
	}
	socks := failPollerUnderTwoSockets(t, f, "hello")
	if n := parked(socks); n != 0 {
		t.Errorf("%d sockets parked on a failed poller", n)
	}
}

// failPollerUnderTwoSockets parks two sockets of f, fails the poller,
// waits for both to get their readers back, and checks that each still
// echoes every one of msgs; it returns the sockets.
func failPollerUnderTwoSockets(t *testing.T, f *fixture, msgs ...string) []*Socket {
	t.Helper()
	a, b := f.dial(), f.dial()
	socks := f.waitSockets(2)
	waitFor(t, "both sockets to park", func() bool { return parked(socks) == 2 })
	f.tr.poller.fail()
	waitFor(t, "both sockets to unpark", func() bool { return parked(socks) == 0 })
	for _, c := range []*client{a, b} {
		for _, m := range msgs {
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatal(err)
			}
			if got := c.read(); string(got) != m {
				t.Fatalf("read %q", got)
			}
		}
	}
	return socks
}

// clientFrame is a client's final frame: masked, with a zero mask key so
// the payload reads as it is (RFC 6455 §5.3 allows any key).
func clientFrame(opcode byte, payload string) []byte {
	if len(payload) > 125 {
		panic("clientFrame: short payloads only")
	}
	return append([]byte{0x80 | opcode, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
}

// TestParkedSocketWakesForEveryMessage: messages that arrive in pieces, or
// several at once, are all answered.
func TestParkedSocketWakesForEveryMessage(t *testing.T) {
	f := newFixture(t)
	c := f.dial()
	socks := f.waitSockets(1)
	waitFor(t, "the socket to park", func() bool { return parked(socks) == 1 })
	ping := clientFrame(websocket.TextMessage, `{"type":"ping"}`)
	raw := c.ws.NetConn()

	// One frame a byte at a time: the reader wakes on the first byte and
	// waits in gorilla for the rest.
	for _, b := range ping {
		if _, err := raw.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if got := c.read(); string(got) != `{"type":"ping"}` {
		t.Fatalf("read %q", got)
	}
	waitFor(t, "the socket to park again", func() bool { return parked(socks) == 1 })

	// Three frames in one write: all three are answered, none waits for
	// a fourth.
	var three []byte
	for range 3 {
		three = append(three, ping...)
	}
	if _, err := raw.Write(three); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := c.read(); string(got) != `{"type":"ping"}` {
			t.Fatalf("read %q", got)
		}
	}
	waitFor(t, "the socket to park again", func() bool { return parked(socks) == 1 })
}
