package wsconn

import (
	"strconv"
	"testing"
)

// TestSendAllIsAllOrNothing: a burst is queued whole when the queue (16)
// takes it and keeps reserve places free, and is refused whole otherwise,
// its frames released and the socket left open: a refused burst is never
// a slow client.
func TestSendAllIsAllOrNothing(t *testing.T) {
	f := newFixture(t)
	c := f.dial()
	s := f.waitSockets(1)[0]
	waitFor(t, "an idle writer", s.HoldWriter)
	burst := func(from, n int) []Message {
		ms := make([]Message, n)
		for i := range ms {
			ms[i] = Message{Frame: TextFrame([]byte(strconv.Itoa(from + i))), Kind: "replay"}
		}
		return ms
	}
	s.Send(Message{Frame: TextFrame([]byte("0")), Kind: "live"})
	s.Send(Message{Frame: TextFrame([]byte("1")), Kind: "live"})

	refused := burst(100, 14) // 2 + 14 + 1 reserved > 16
	for _, m := range refused {
		m.Frame.Retain() // to see SendAll let go
	}
	if s.SendAll(refused, 1) {
		t.Fatal("a burst the queue cannot take with its reserve was queued")
	}
	for i, m := range refused {
		if r := m.Frame.refs.Load(); r != 1 {
			t.Fatalf("refused frame %d holds %d references, want ours alone", i, r)
		}
		m.Frame.Release()
	}
	if !s.SendAll(burst(2, 13), 1) { // 2 + 13 + 1 = 16
		t.Fatal("a burst that fits with its reserve was refused")
	}
	if q := s.Queued(); q != 15 {
		t.Fatalf("%d queued, want 15", q)
	}
	s.Send(Message{Frame: TextFrame([]byte("15")), Kind: "live"}) // the reserved place
	s.ReleaseWriter()
	for i := range 16 {
		if got := string(c.read()); got != strconv.Itoa(i) {
			t.Fatalf("message %d: %q", i, got)
		}
	}
}

// TestCloseAfterQueuedWritesTheQueueFirst: the replies queued before a
// CloseAfterQueued reach the client, then the close frame with its code;
// Close would drop them (as over TLS, where every reply is queued).
func TestCloseAfterQueuedWritesTheQueueFirst(t *testing.T) {
	const policyViolation = 1008
	f := newFixture(t)
	c := f.dial()
	s := f.waitSockets(1)[0]
	waitFor(t, "an idle writer", s.HoldWriter)
	for i := range 3 {
		s.Send(Message{Frame: TextFrame([]byte(strconv.Itoa(i))), Kind: "reply"})
	}
	s.CloseAfterQueued(policyViolation, "done")
	s.Send(Message{Frame: TextFrame([]byte("late")), Kind: "reply"}) // after the close: dropped
	s.ReleaseWriter()
	for i := range 3 {
		if got := string(c.read()); got != strconv.Itoa(i) {
			t.Fatalf("reply %d: %q", i, got)
		}
	}
	if code := c.expectClose(); code != policyViolation {
		t.Fatalf("closed with %d, want %d", code, policyViolation)
	}
}
