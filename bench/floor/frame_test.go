package floor

import (
	"bytes"
	"testing"
)

func TestAppendFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		head []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{0xffff, []byte{0x81, 126, 0xff, 0xff}},
		{0x10000, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		f := appendFrame(nil, opText, make([]byte, tc.n))
		if !bytes.HasPrefix(f, tc.head) || len(f) != len(tc.head)+tc.n {
			t.Errorf("%d bytes: frame starts % x, %d long; want % x, %d", tc.n, f[:min(len(f), 10)], len(f), tc.head, len(tc.head)+tc.n)
		}
	}
}

func TestStateFrameSize(t *testing.T) {
	f := stateFrame(123456, 100_042)
	if got := len(f) - 4; got != StateSize {
		t.Fatalf("payload %d bytes, want %d", got, StateSize)
	}
	if !bytes.Contains(f, []byte(`"id":"123456"`)) || !bytes.HasSuffix(f, []byte(`,"currentBid":100042,"source":"floor"}}`)) {
		t.Fatalf("unexpected message %q", f[4:])
	}
}
