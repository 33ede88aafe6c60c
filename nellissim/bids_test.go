package nellissim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

type bidReply struct {
	Message string `json:"message"`
	Data    struct {
		BidCount            int  `json:"bidCount"`
		CurrentAmount       int  `json:"currentAmount"`
		MinimumNextBid      int  `json:"minimumNextBid"`
		WinningBidUserID    int  `json:"winningBidUserId"`
		BidderCount         int  `json:"bidderCount"`
		ProjectExtended     bool `json:"projectExtended"`
		ProjectNewCloseTime struct {
			Type  string `json:"__type"`
			Value string `json:"value"`
		} `json:"projectNewCloseTime"`
	} `json:"data"`
}

// bid posts a bid the way the site does and decodes the answer.
func (ts *testSim) bid(t *testing.T, user string, id int64, amount int) (int, bidReply) {
	t.Helper()
	var cookie *http.Cookie
	if user != "" {
		cookie = userCookieFor(user)
	}
	status, body := ts.post(t, "/api/bids", "text/plain;charset=UTF-8",
		fmt.Sprintf(`{"productId":%d,"bid":%d}`, id, amount), cookie)
	var r bidReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("bid reply %q: %v", body, err)
	}
	return status, r
}

func TestBidOutcomes(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 11})
	a := ts.firstLot(t)
	c := ts.openStream(t, a.ID)
	c.waitFor(t, "\n\n", 1)

	if status, r := ts.bid(t, "", a.ID, a.NextBid); status != 401 || r.Message != "Authentication required" {
		t.Errorf("no cookie: %d %q", status, r.Message)
	}
	if status, r := ts.bid(t, "alice", a.ID, a.CurrentBid); status != 400 || r.Message != "Your bid is too low" {
		t.Errorf("too low: %d %q", status, r.Message)
	}

	// Alice takes the lead with a maximum of next+20; the price moves only
	// to what it takes to lead.
	status, r := ts.bid(t, "alice", a.ID, a.NextBid+20)
	if status != 200 || r.Message != "Bid placed successfully" {
		t.Fatalf("first bid: %d %q", status, r.Message)
	}
	if r.Data.WinningBidUserID != userID("alice") || r.Data.CurrentAmount > a.NextBid+1 ||
		r.Data.MinimumNextBid != r.Data.CurrentAmount+1 || r.Data.BidCount != a.BidCount+1 {
		t.Errorf("first bid data %+v (lot was %+v)", r.Data, a)
	}
	if r.Data.ProjectExtended || r.Data.ProjectNewCloseTime.Type != "Date" || r.Data.ProjectNewCloseTime.Value != isoTime(a.CloseTime) {
		t.Errorf("a bid far from the close moved it: %+v", r.Data)
	}
	c.waitFor(t, `"lastBidder":"alice"`, 1)

	if status, r := ts.bid(t, "alice", a.ID, a.NextBid+20); status != 409 || r.Message != "You have already placed a bid with the same price" {
		t.Errorf("same price: %d %q", status, r.Message)
	}

	// Bob bids below alice's maximum: accepted, but outbid at once.
	now := ts.auction(t, a.ID)
	status, r = ts.bid(t, "bob", a.ID, now.NextBid+5)
	if status != 200 || r.Message != "Your bid has been accepted, but another user has a higher maximum bid." {
		t.Fatalf("outbid: %d %q", status, r.Message)
	}
	if r.Data.CurrentAmount != now.NextBid+6 || r.Data.WinningBidUserID != userID("alice") || r.Data.BidderCount < 2 {
		t.Errorf("outbid data %+v, want price %d with alice winning", r.Data, now.NextBid+6)
	}
	got := c.waitFor(t, "ch_product_bids", 2)
	if !strings.Contains(got, fmt.Sprintf(`"currentBid":%d,`, now.NextBid+6)) {
		t.Errorf("the outbid price did not reach the stream: %q", got)
	}

	// Bob beats alice's maximum: he leads at one dollar above it.
	status, r = ts.bid(t, "bob", a.ID, a.NextBid+50)
	if status != 200 || r.Message != "Bid placed successfully" || r.Data.CurrentAmount != a.NextBid+21 || r.Data.WinningBidUserID != userID("bob") {
		t.Errorf("winning bid: %d %+v, want bob leading at %d", status, r, a.NextBid+21)
	}

	if err := ts.CloseLot(a.ID); err != nil {
		t.Fatal(err)
	}
	if status, r := ts.bid(t, "alice", a.ID, a.NextBid+500); status != 410 || r.Message != "This auction has ended" {
		t.Errorf("closed: %d %q", status, r.Message)
	}
	st, _ := ts.Stats(a.ID)
	if st.BidRequests != 7 {
		t.Errorf("%d bid requests counted, want 7", st.BidRequests)
	}
}

func TestBidRejectsBadRequests(t *testing.T) {
	ts := newTestSim(t, Config{})
	a := ts.firstLot(t)
	for body, want := range map[string]int{
		"not json":                  400,
		`{"productId":"x","bid":5}`: 400,
		`{"bid":5}`:                 400,
		`{"productId":1,"bid":5}`:   404,
		`{"productId":` + fmt.Sprint(a.ID) + `,"bid":1.5}`: 400,
		strings.Repeat(" ", 5000):                          413,
	} {
		status, resp := ts.post(t, "/api/bids", "text/plain;charset=UTF-8", body, userCookieFor("alice"))
		if status != want || !strings.Contains(string(resp), `"message"`) {
			t.Errorf("%.30q: %d %s, want %d with a message", body, status, resp, want)
		}
	}
	if status, _, _ := ts.fetch(t, "/api/bids", nil); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/bids: %d, want 405", status)
	}
}

func TestSoftCloseExtends(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 12, PingInterval: 5 * time.Millisecond})
	a := ts.firstLot(t)
	c := ts.openStream(t, a.ID)

	ts.clock.Set(a.CloseTime.Add(-10 * time.Second))
	status, r := ts.bid(t, "alice", a.ID, a.NextBid)
	wantClose := ts.clock.Now().Add(30 * time.Second)
	if status != 200 || !r.Data.ProjectExtended || r.Data.ProjectNewCloseTime.Value != isoTime(wantClose) {
		t.Fatalf("bid 10 s before close: %d %+v, want the close moved to %s", status, r.Data, isoTime(wantClose))
	}
	got := c.waitFor(t, "ch_product_bids", 1)
	if !strings.Contains(got, `"timeRemaining":30,"closeTime":"`+isoTime(wantClose)+`"`) {
		t.Errorf("the bid event does not carry the new close: %q", got)
	}

	// Past the old close time the lot is still open...
	ts.clock.Set(a.CloseTime.Add(time.Second))
	if ts.auction(t, a.ID).IsClosed {
		t.Fatal("the lot closed at its original time despite the extension")
	}
	// ...and a bid 31 s before the new close does not extend it.
	ts.clock.Set(wantClose.Add(-31 * time.Second))
	if _, r := ts.bid(t, "bob", a.ID, ts.auction(t, a.ID).NextBid+40); r.Data.ProjectExtended {
		t.Error("a bid outside the extension window extended the lot")
	}
	ts.clock.Set(wantClose)
	c.waitFor(t, "ch_product_closed", 1)
	if !ts.auction(t, a.ID).IsClosed {
		t.Error("the lot did not close at its extended time")
	}
}

func TestRivalsBid(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 13, Auctions: 2, BidInterval: time.Millisecond})
	c0 := ts.openStream(t, ts.Auctions()[0].ID)
	c1 := ts.openStream(t, ts.Auctions()[1].ID)
	// With two lots and a bid every millisecond or so, both see bids soon.
	c0.waitFor(t, "ch_product_bids", 3)
	c1.waitFor(t, "ch_product_bids", 3)
	for _, a := range ts.Auctions() {
		found := false
		for _, r := range ts.rivals {
			found = found || a.Leader == r
		}
		if !found {
			t.Errorf("lot %d led by %q, not one of the rivals", a.ID, a.Leader)
		}
	}
}
