package wsconn

import (
	"bytes"
	"strconv"
	"testing"
)

// TestTextFrameHeaders: the three length encodings of RFC 6455 §5.2, at
// their edges, built in place and by copy alike.
func TestTextFrameHeaders(t *testing.T) {
	for _, tc := range []struct {
		size int
		head []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xFF, 0xFF}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		payload := bytes.Repeat([]byte{'x'}, tc.size)
		inPlace := FinishText(append(make([]byte, Headroom, Headroom+tc.size), payload...))
		for name, f := range map[string][]byte{"in place": inPlace, "copied": TextFrame(payload).Bytes()} {
			if !bytes.HasPrefix(f, tc.head) || !bytes.Equal(f[len(tc.head):], payload) {
				t.Errorf("%d bytes %s: header % x, length %d", tc.size, name, f[:min(len(f), 10)], len(f))
			}
		}
	}
}

func TestCloseFrame(t *testing.T) {
	if got, want := closeFrameBytes(4008, "slow"), []byte{0x88, 6, 0x0F, 0xA8, 's', 'l', 'o', 'w'}; !bytes.Equal(got, want) {
		t.Errorf("close frame % x, want % x", got, want)
	}
	long := bytes.Repeat([]byte{'r'}, 200)
	if f := closeFrameBytes(1001, string(long)); f[1] != 125 || len(f) != 127 {
		t.Errorf("a long reason is not cut to fit a control frame: length byte %d, %d bytes", f[1], len(f))
	}
}

// TestFrameIsNotReusedWhileQueued: a frame fanned out to several sockets,
// some of which queue it, keeps its buffer until the last of them has
// written it: no new frame gets it meanwhile, every client reads it whole,
// and it is released then. A queued frame replaced by a newer one of its
// key is released at once. Run with -race.
func TestFrameIsNotReusedWhileQueued(t *testing.T) {
	const sockets, held = 6, 3
	f := newFixture(t)
	clients := make([]*client, sockets)
	for i := range clients {
		clients[i] = f.dial()
		// One at a time, so that socks[i] is clients[i]'s socket: a
		// server registers its socket after the client's dial returns.
		f.waitSockets(i + 1)
	}
	socks := f.waitSockets(sockets)
	for _, s := range socks[:held] {
		waitFor(t, "an idle writer", s.HoldWriter)
	}

	payload := bytes.Repeat([]byte("fanned "), 300)
	fr := TextFrame(payload)
	for _, s := range socks {
		fr.Retain()
		s.Send(Message{Frame: fr, Kind: "state", Key: Key{Class: 1, ID: "a"}})
	}
	fr.Release()
	// The sockets that wrote at once let go; the held ones still hold it.
	waitFor(t, "the free sockets to write", func() bool { return fr.refs.Load() == held })
	for range 100 {
		if g := NewFrame(len(payload)); g == fr {
			t.Fatal("a frame still queued was handed out again")
		} else {
			g.Release()
		}
	}
	for i := range sockets - held {
		if got := clients[held+i].read(); !bytes.Equal(got, payload) {
			t.Fatalf("free socket %d read %d bytes, not the frame", i, len(got))
		}
	}

	// A newer message of the same key replaces the queued one, which the
	// socket lets go of.
	newer := TextFrame([]byte("newer"))
	socks[0].Send(Message{Frame: newer, Kind: "state", Key: Key{Class: 1, ID: "a"}})
	if n := fr.refs.Load(); n != held-1 {
		t.Fatalf("after a replace the frame has %d holders, want %d", n, held-1)
	}

	for _, s := range socks[:held] {
		s.ReleaseWriter()
	}
	if got := clients[0].read(); string(got) != "newer" {
		t.Fatalf("held socket 0 read %q, want the newer message", got)
	}
	for i := 1; i < held; i++ {
		if got := clients[i].read(); !bytes.Equal(got, payload) {
			t.Fatalf("held socket %d read %d bytes, not the frame", i, len(got))
		}
	}
	waitFor(t, "the last holder to release the frame", func() bool { return fr.refs.Load() <= 0 })
}

// TestReleaseWithoutReferencePanics: releasing a frame once too often is
// caught where it happens, not on the wire later.
func TestReleaseWithoutReferencePanics(t *testing.T) {
	f := TextFrame([]byte("x"))
	f.Release()
	defer func() {
		if recover() == nil {
			t.Error("a second release did not panic")
		}
	}()
	f.Release()
}

// TestFramesFromThePoolAreWhole: frames recycled through the pool, of
// growing and shrinking sizes, always read as the payload they were given.
func TestFramesFromThePoolAreWhole(t *testing.T) {
	for i := range 200 {
		payload := []byte(strconv.Itoa(i) + string(bytes.Repeat([]byte{'p'}, (i*37)%70000)))
		f := TextFrame(payload)
		want := append(make([]byte, Headroom, Headroom+len(payload)), payload...)
		if !bytes.Equal(f.Bytes(), FinishText(want)) {
			t.Fatalf("frame %d is not its payload", i)
		}
		f.Release()
	}
}
