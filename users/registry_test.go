package users

import "testing"

type fakeRegistry struct{ reports []AutoBidState }

func (f *fakeRegistry) AutoBidders(productID int64) []AutoBidder {
	return []AutoBidder{{User: "alice", AuctionID: "7", Config: AuctionConfig{AutoBid: true}}}
}

func (f *fakeRegistry) ReportAutoBid(s AutoBidState) { f.reports = append(f.reports, s) }

// Before the registry exists nobody auto-bids and reports go nowhere;
// after Set both reach it.
func TestLateRegistry(t *testing.T) {
	var l LateRegistry
	if got := l.AutoBidders(7); got != nil {
		t.Errorf("auto-bidders before Set: %v", got)
	}
	l.ReportAutoBid(AutoBidState{User: "alice", AuctionID: "7", Status: "idle"}) // dropped
	f := &fakeRegistry{}
	l.Set(f)
	if got := l.AutoBidders(7); len(got) != 1 || got[0].User != "alice" {
		t.Errorf("auto-bidders after Set: %v", got)
	}
	l.ReportAutoBid(AutoBidState{User: "alice", AuctionID: "7", Status: "winning"})
	if len(f.reports) != 1 || f.reports[0].Status != "winning" {
		t.Errorf("reports %+v", f.reports)
	}
}
