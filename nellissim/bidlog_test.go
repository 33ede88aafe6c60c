package nellissim

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// Every bid a user posts is listed with its outcome, a repeated amount
// included (Nellis refuses it, and a test of "every bid sent once" must
// still see it); rival bids are not users' requests and are left out.
func TestBidRequestsListEveryUsersBid(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 11})
	lots := ts.Auctions()
	a, b := lots[0], lots[1]

	if status, _ := ts.bid(t, "alice", a.ID, a.NextBid+5); status != 200 {
		t.Fatalf("alice's bid: %d", status)
	}
	if status, _ := ts.bid(t, "alice", a.ID, a.NextBid+5); status != 409 {
		t.Fatalf("alice's repeated bid: %d, want 409", status)
	}
	if err := ts.EmitBid(a.ID, a.NextBid+50, "rival"); err != nil {
		t.Fatal(err)
	}
	if status, _ := ts.bid(t, "bob", b.ID, b.NextBid); status != 200 {
		t.Fatalf("bob's bid: %d", status)
	}
	if status, _ := ts.bid(t, "", b.ID, b.NextBid+1); status != 401 {
		t.Fatalf("anonymous bid: %d", status)
	}

	list := func(query string) []BidRequest {
		t.Helper()
		status, ctype, body := ts.fetch(t, "/_sim/bids"+query, nil)
		if status != 200 || ctype != "application/json; charset=utf-8" {
			t.Fatalf("/_sim/bids%s: %d %s %s", query, status, ctype, body)
		}
		var got []BidRequest
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("/_sim/bids%s: %v: %s", query, err, body)
		}
		return got
	}
	line := func(r BidRequest) string {
		return fmt.Sprintf("%d %s %d %v %q", r.ProductID, r.User, r.Amount, r.Accepted, r.Refusal)
	}
	want := []string{
		fmt.Sprintf("%d alice %d true \"\"", a.ID, a.NextBid+5),
		fmt.Sprintf("%d alice %d false %q", a.ID, a.NextBid+5, errBidSamePrice.Error()),
		fmt.Sprintf("%d bob %d true \"\"", b.ID, b.NextBid),
	}
	all := list("")
	if len(all) != len(want) {
		t.Fatalf("listed %d bids, want %d: %v", len(all), len(want), all)
	}
	for i, r := range all {
		if line(r) != want[i] || r.At.IsZero() {
			t.Errorf("bid %d: %s at %s, want %s", i, line(r), r.At, want[i])
		}
	}
	if got := list(fmt.Sprintf("?productId=%d", b.ID)); len(got) != 1 || line(got[0]) != want[2] {
		t.Errorf("product %d's bids: %v", b.ID, got)
	}
	if status, _, _ := ts.fetch(t, "/_sim/bids?productId=x", nil); status != 400 {
		t.Errorf("a malformed product id: %d, want 400", status)
	}
}

// With a bid delay a request is placed, and answered, only once the delay
// has passed: until then it is in flight, and it is listed with both times.
func TestBidDelayHoldsARequestInFlight(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 11, Now: time.Now})
	a := ts.firstLot(t)
	const delay = 300 * time.Millisecond
	ts.SetBidDelay(delay)
	sent := time.Now()
	answered := make(chan int, 1)
	go func() {
		status, _ := ts.post(t, "/api/bids", "text/plain", fmt.Sprintf(`{"productId":%d,"bid":%d}`, a.ID, a.NextBid), userCookieFor("alice"))
		answered <- status
	}()
	time.Sleep(delay / 3)
	if got := ts.BidRequests(0); len(got) != 0 || ts.auction(t, a.ID).BidCount != a.BidCount {
		t.Fatalf("placed before the delay passed: %v", got)
	}
	if status := <-answered; status != 200 || time.Since(sent) < delay {
		t.Fatalf("answered %d after %s, want 200 after %s", status, time.Since(sent), delay)
	}
	got := ts.BidRequests(a.ID)
	if len(got) != 1 || !got[0].Accepted || got[0].At.Sub(got[0].Received) < delay {
		t.Fatalf("listed %+v, want one accepted bid placed %s after it arrived", got, delay)
	}
}
