package users

import "testing"

type fakeRegistry struct {
	reports []AutoBidState
	failed  []string
}

func (f *fakeRegistry) CookiesFor(int64) (string, string) { return "k1", "a=b" }

func (f *fakeRegistry) CookiesFailed(_ int64, owner string) { f.failed = append(f.failed, owner) }

func (f *fakeRegistry) Monitored(productID int64) bool { return productID == 7 }

func (f *fakeRegistry) AutoBidders(productID int64) []AutoBidder {
	return []AutoBidder{{User: "alice", AuctionID: "7", Config: AuctionConfig{AutoBid: true}}}
}

func (f *fakeRegistry) ReportAutoBid(s AutoBidState) { f.reports = append(f.reports, s) }

// Before the registry exists there are no users: anonymous snapshots,
// nobody auto-bids, reports go nowhere, every product counts as
// monitored. After Set every call reaches it.
func TestLateRegistry(t *testing.T) {
	var l LateRegistry
	if owner, cookies := l.CookiesFor(7); owner != "" || cookies != "" {
		t.Errorf("cookies before Set: %q", owner)
	}
	l.CookiesFailed(7, "k1") // nobody to tell
	if !l.Monitored(8) {
		t.Error("a product before Set does not count as monitored")
	}
	if got := l.AutoBidders(7); got != nil {
		t.Errorf("auto-bidders before Set: %v", got)
	}
	l.ReportAutoBid(AutoBidState{User: "alice", AuctionID: "7", Status: "idle"}) // dropped

	f := &fakeRegistry{}
	l.Set(f)
	if owner, cookies := l.CookiesFor(7); owner != "k1" || cookies != "a=b" {
		t.Errorf("cookies after Set: %q", owner)
	}
	l.CookiesFailed(7, "k1")
	if l.Monitored(8) || !l.Monitored(7) {
		t.Error("Monitored does not ask the registry")
	}
	if got := l.AutoBidders(7); len(got) != 1 || got[0].User != "alice" {
		t.Errorf("auto-bidders after Set: %v", got)
	}
	l.ReportAutoBid(AutoBidState{User: "alice", AuctionID: "7", Status: "winning"})
	if len(f.reports) != 1 || f.reports[0].Status != "winning" || len(f.failed) != 1 {
		t.Errorf("reports %+v, failed %v", f.reports, f.failed)
	}
}
