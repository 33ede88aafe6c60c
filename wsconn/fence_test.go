package wsconn

import "testing"

// TestAKeyedMessageNeverOvertakesAFence: a newer state replaces an older
// one of its key queued after the last fence, in place, but never one
// queued before it: the newer state would reach the client before the
// fence (a listing of states) and the listing's older state after it.
func TestAKeyedMessageNeverOvertakesAFence(t *testing.T) {
	f := newFixture(t)
	c := f.dial()
	s := f.waitSockets(1)[0]
	waitFor(t, "an idle writer", s.HoldWriter)
	state := func(text string, seq uint64) Message {
		return Message{Frame: TextFrame([]byte(text)), Kind: "state", Key: Key{Class: 1, ID: "a"}, Epoch: "e", Seq: seq}
	}
	s.Send(state("old", 1))
	s.Send(Message{Frame: TextFrame([]byte("list")), Kind: "list", Fence: true})
	s.Send(state("new", 3))
	s.Send(state("newer", 4)) // replaces "new", after the fence
	s.ReleaseWriter()
	for _, want := range []string{"old", "list", "newer"} {
		if got := string(c.read()); got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
}
