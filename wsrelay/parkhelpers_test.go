package wsrelay

import (
	"testing"
	"time"
)

// Parking helpers shared by the linux-only park tests and the tests that
// run on every platform (where a socket may never park).

// parkedSockets counts the sockets with no reader goroutine.
func parkedSockets(r *Relay) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for c := range r.conns {
		if c.s.Parked() {
			n++
		}
	}
	return n
}

// waitParked waits until n sockets are parked.
func waitParked(t *testing.T, r *Relay, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for parkedSockets(r) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets parked, want %d", parkedSockets(r), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clientFrame is a client's final frame: masked, with a zero mask key so
// the payload reads as it is (RFC 6455 §5.3 allows any key).
func clientFrame(opcode byte, payload string) []byte {
	if len(payload) > 125 {
		panic("clientFrame: short payloads only")
	}
	return append([]byte{0x80 | opcode, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
}
