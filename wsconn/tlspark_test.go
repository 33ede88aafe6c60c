//go:build linux && !nellis_portable

package wsconn

import (
	"strings"
	"testing"
	"time"
)

// TestParkedTLSSocketMissesNoInput: an idle socket over TLS is parked, and
// whatever the client sends next is read, wherever crypto/tls holds it
// when the reader looks: records that arrive together (the later ones read
// ahead as ciphertext), a frame split across records, two frames in one
// record (the second left decrypted, behind a read buffer's worth), and
// frames pipelined right behind the upgrade's answer (before the socket's
// reader first looks). After each the socket parks again.
func TestParkedTLSSocketMissesNoInput(t *testing.T) {
	limits := Limits{QueueSize: 16, WriteTimeout: 2 * time.Second, PingInterval: 10 * time.Second}
	f := newFixtureTLS(t, limits, true)
	if !f.tr.Polling() {
		t.Fatal("no idle poller on linux")
	}
	// A frame of exactly the read buffer's size: gorilla takes it whole
	// and the next frame stays in the tls.Conn, decrypted.
	big := textOfFrameSize(readBufferSize)
	c := f.dialTLS()
	c.upgrade(maskedText("early one"), maskedText("early two"))
	for _, want := range []string{"early one", "early two"} {
		if got := c.readText(); got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	socks := f.waitSockets(1)
	waitParked := func(when string) {
		t.Helper()
		waitFor(t, "the socket to park "+when, func() bool { return parked(socks) == 1 })
	}
	waitParked("after the pipelined frames")

	split := maskedText("split across two records")
	for _, tc := range []struct {
		name    string
		records [][]byte
		want    []string
	}{
		{"two records at once", [][]byte{maskedText("first"), maskedText("second")}, []string{"first", "second"}},
		{"a frame split across records", [][]byte{split[:9], split[9:]}, []string{"split across two records"}},
		{"two frames in one record", [][]byte{append(maskedText(big), maskedText("behind")...)}, []string{big, "behind"}},
		{"three records at once, the middle frame split", [][]byte{maskedText("a"), append(maskedText("b"), split[:3]...), split[3:]}, []string{"a", "b", "split across two records"}},
	} {
		c.together(tc.records...)
		for _, want := range tc.want {
			if got := c.readText(); got != want {
				t.Fatalf("%s: read %q, want %q", tc.name, got, want)
			}
		}
		waitParked("after " + tc.name)
	}

	// A pong (what answers the sweeper's ping of a silent socket) wakes
	// the reader, proves the client alive, and the socket parks again
	// instead of waiting in gorilla for a message.
	before := socks[0].LastRead()
	time.Sleep(10 * time.Millisecond)
	c.together([]byte{0x8A, 0x80, 0, 0, 0, 0})
	waitFor(t, "the pong to be read", func() bool { return socks[0].LastRead().After(before) })
	waitParked("after a pong")
}

// TestFailedPollerHandsTLSSocketsBack: if the epoll set fails, parked TLS
// sockets, whose TLS input buffers were dropped, get their readers back
// and keep working.
func TestFailedPollerHandsTLSSocketsBack(t *testing.T) {
	f := newFixtureTLS(t, Limits{QueueSize: 16, WriteTimeout: 2 * time.Second, PingInterval: 10 * time.Second}, true)
	failPollerUnderTwoSockets(t, f, "hello", strings.Repeat("x", 1000))
}
