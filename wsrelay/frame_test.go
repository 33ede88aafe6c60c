package wsrelay

import (
	"bytes"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
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
		inPlace := finishText(append(frameBuf(tc.size), payload...))
		for name, f := range map[string][]byte{"in place": inPlace, "copied": textFrame(payload)} {
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

// TestFannedStateIsTheState: a change fanned out, its fields built once
// for every user, reads exactly as the same state built for one user, in
// each of its statuses.
func TestFannedStateIsTheState(t *testing.T) {
	a := &monitored{Auction: Auction{ID: "42", Title: `a "quoted" lot`, URL: "https://www.nellisauction.com/p/x/42",
		Config: AuctionConfig{MaxBid: 30, IncrementAmount: 1, Strategy: "sniping", AutoBid: true}}}
	a.refreshHead()
	open, closed := product(42, 12.5), product(42, 20)
	closed.IsClosed = true
	failed, _ := newAutoBidView(stateOf("", "", `{"status":"error","error":"cookies refused"}`))
	bidding, _ := newAutoBidView(stateOf("", "", `{"status":"active","lastBid":13}`))
	now := time.Now()
	for name, tc := range map[string]struct {
		p  nellis.Product
		ab autoBidView
	}{
		"monitoring":   {open, autoBidView{}},
		"auto-bidding": {open, bidding},
		"error":        {open, failed},
		"ended":        {closed, failed},
	} {
		c := newChange(t, tc.p, "e1", 7)
		cf := newChangeFields(c, now)
		// The public values, and a user's own state put in their place.
		for _, us := range []*hub.UserState{nil, {Owner: "k", IsWinning: true, IsWatching: true, NextBid: 1234567.5}} {
			want := textFrame(auctionStateJSON(a.head, a.AddedAt, c, tc.ab, us, now, false))
			if got := fannedStateFrame(frameBuf(fannedStateSize(a.head, &cf, tc.ab, us)), a.head, &cf, tc.ab, us); !bytes.Equal(got, want) {
				t.Errorf("%s (user state %v):\n got %s\nwant %s", name, us, got, want)
			}
		}
	}
}
