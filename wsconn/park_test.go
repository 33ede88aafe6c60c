//go:build linux

package wsconn

import (
	"testing"
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
	a, b := f.dial(), f.dial()
	socks := f.waitSockets(2)
	waitFor(t, "both sockets to park", func() bool { return parked(socks) == 2 })
	f.tr.poller.fail()
	waitFor(t, "both sockets to unpark", func() bool { return parked(socks) == 0 })
	for _, c := range []*client{a, b} {
		if err := c.ws.WriteMessage(1, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if got := c.read(); string(got) != "hello" {
			t.Fatalf("read %q", got)
		}
	}
	if n := parked(socks); n != 0 {
		t.Errorf("%d sockets parked on a failed poller", n)
	}
}
