package wsrelay

import (
	"bytes"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/wsconn"
)

// TestFannedStateIsTheState: a change fanned out, its fields built once
// for every user, reads exactly as the same state built for one user, in
// each of its statuses.
func TestFannedStateIsTheState(t *testing.T) {
	a := newMonitored(Auction{ID: "42", Title: `a "quoted" lot`, URL: "https://www.nellisauction.com/p/x/42",
		Config: AuctionConfig{MaxBid: 30, IncrementAmount: 1, Strategy: "sniping", AutoBid: true}}, nil)
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
			want := wsconn.TextFrame(auctionStateJSON(a.head, a.AddedAt, c, tc.ab, us, now, false)).Bytes()
			if got := fannedStateFrame(frameBuf(fannedStateSize(a.head, &cf, tc.ab, us)), a.head, &cf, tc.ab, us); !bytes.Equal(got, want) {
				t.Errorf("%s (user state %v):\n got %s\nwant %s", name, us, got, want)
			}
		}
	}
}
