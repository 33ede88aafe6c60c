package nellissim

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// TestUserBidsListsEachRequest: every bid request a signed-in user sends
// is listed with its amount and outcome, refused ones too, in order;
// rivals and requests without a user are not; the control API serves the
// same list.
func TestUserBidsListsEachRequest(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 13})
	a := ts.firstLot(t)

	ts.bid(t, "alice", a.ID, a.NextBid+10)
	ts.bid(t, "alice", a.ID, a.NextBid+10) // the same price: refused
	ts.bid(t, "", a.ID, a.NextBid+30)      // nobody signed in
	if err := ts.EmitBid(a.ID, a.NextBid+40, "rival"); err != nil {
		t.Fatal(err)
	}
	ts.bid(t, "bob", a.ID, a.NextBid+50)

	got, err := ts.UserBids(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		bidder   string
		amount   int
		accepted bool
		error    string
	}
	var rows []row
	for _, b := range got {
		if b.At.IsZero() {
			t.Errorf("%+v has no time", b)
		}
		rows = append(rows, row{b.Bidder, b.Amount, b.Accepted, b.Error})
	}
	want := []row{
		{"alice", a.NextBid + 10, true, ""},
		{"alice", a.NextBid + 10, false, errBidSamePrice.Error()},
		{"bob", a.NextBid + 50, true, ""},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("user bids\n%+v\nwant\n%+v", rows, want)
	}

	_, _, body := ts.fetch(t, fmt.Sprintf("/_sim/user-bids?productId=%d", a.ID), nil)
	var listed []UserBid
	if err := json.Unmarshal(body, &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(got) {
		t.Fatalf("GET /_sim/user-bids: %s, want %d entries", body, len(got))
	}
	for i := range listed {
		if listed[i].Bidder != got[i].Bidder || listed[i].Amount != got[i].Amount ||
			listed[i].Accepted != got[i].Accepted || !listed[i].At.Equal(got[i].At) {
			t.Errorf("GET /_sim/user-bids[%d] = %+v, want %+v", i, listed[i], got[i])
		}
	}
	if status, _, _ := ts.fetch(t, "/_sim/user-bids?productId=1", nil); status != 404 {
		t.Errorf("an unknown product answered %d, want 404", status)
	}
}
