//go:build linux && !nellis_portable

package wsconn

import (
	"testing"
	"time"
)

// TestTLSFramesAreWrittenBySender: a TLS socket whose kernel has room
// gets its frame written by the sender itself, as a plain one does: no
// writer goroutine is left holding it when Send returns.
func TestTLSFramesAreWrittenBySender(t *testing.T) {
	f := newFixtureTLS(t, Limits{QueueSize: 16, WriteTimeout: 2 * time.Second, PingInterval: 10 * time.Second}, true)
	c := f.dial()
	s := f.waitSockets(1)[0]
	inline := 0
	for range 20 {
		s.Send(Message{Frame: TextFrame([]byte("change")), Kind: "change"})
		if !s.Writing() {
			inline++
		}
		if got := c.read(); string(got) != "change" {
			t.Fatalf("read %q", got)
		}
	}
	if inline < 18 {
		t.Errorf("%d of 20 frames written by their sender, want (nearly) all", inline)
	}
}

// TestTLSSenderNeverWaitsForAClient: a client that stops reading never
// holds up the sender of a TLS frame, however full its socket: once the
// kernel has no room, frames wait in the queue, and the socket is closed
// as slow (4008) when the queue or WriteTimeout runs out.
func TestTLSSenderNeverWaitsForAClient(t *testing.T) {
	const writeTimeout = 500 * time.Millisecond
	f := newFixtureTLS(t, Limits{QueueSize: 16, WriteTimeout: writeTimeout, PingInterval: 10 * time.Second}, true)
	f.dial() // never reads
	s := f.waitSockets(1)[0]
	frame := make([]byte, 8<<10)
	var slowest time.Duration
	for i := 0; i < 10000 && !s.Closing(); i++ {
		start := time.Now()
		s.Send(Message{Frame: TextFrame(frame), Kind: "change"})
		slowest = max(slowest, time.Since(start))
	}
	if !s.Closing() {
		t.Fatal("80 MB sent to a client that reads nothing, and its socket is still open")
	}
	if slowest >= writeTimeout/2 {
		t.Errorf("a Send took %v: the sender waited for the client", slowest)
	}
	if code := f.endCode(); code != CloseSlow {
		t.Errorf("socket ended with %d, want %d", code, CloseSlow)
	}
}

// TestTLSSenderNeverWaitsForAClientSmallFrames is the same with frames of
// a few hundred bytes, a change's size: the kernel counts each write's
// segment buffer beside its bytes, so many small frames fill the send
// buffer faster than their bytes say, and the room the kernel was asked
// for once per burst (roomCheck) must be spent at that rate.
func TestTLSSenderNeverWaitsForAClientSmallFrames(t *testing.T) {
	const writeTimeout = 2 * time.Second
	f := newFixtureTLS(t, Limits{QueueSize: 16, WriteTimeout: writeTimeout, PingInterval: 10 * time.Second}, true)
	f.dial() // never reads
	s := f.waitSockets(1)[0]
	frame := make([]byte, 300)
	var slowest time.Duration
	for i := 0; i < 2_000_000 && !s.Closing(); i++ {
		start := time.Now()
		s.Send(Message{Frame: TextFrame(frame), Kind: "change"})
		slowest = max(slowest, time.Since(start))
	}
	if !s.Closing() {
		t.Fatal("600 MB sent to a client that reads nothing, and its socket is still open")
	}
	if slowest >= writeTimeout/4 {
		t.Errorf("a Send took %v: the sender waited for the client", slowest)
	}
	if code := f.endCode(); code != CloseSlow {
		t.Errorf("socket ended with %d, want %d", code, CloseSlow)
	}
}
