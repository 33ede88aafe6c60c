package users

import (
	"slices"
	"testing"
)

// The Directory is where a user's auctions live: added once, edited in
// place of a copy (the id and product stay), listed oldest first, counted
// by product for who monitors it, listed per product for the auto-bid
// engine with the user's cookies, and given whole as the record to save.
func TestDirectoryKeepsEachUsersAuctions(t *testing.T) {
	d := NewDirectory()
	d.Set(map[string]string{"alice": "a1", "bob": "b1"})
	key, _ := d.SetCookies("alice", "alice=1")
	auto := AuctionConfig{MaxBid: 40, Strategy: StrategySniping, AutoBid: true}
	if !d.Monitor("alice", Auction{ID: "7", ProductID: 7, AddedAt: 2, Config: auto}) ||
		!d.Monitor("alice", Auction{ID: "7-b", ProductID: 7, AddedAt: 1, Config: DefaultAuctionConfig}) ||
		!d.Monitor("bob", Auction{ID: "8", ProductID: 8, AddedAt: 3, Config: auto}) {
		t.Fatal("Monitor refused a new auction")
	}
	if d.Monitor("alice", Auction{ID: "7", ProductID: 9}) || d.Monitor("carol", Auction{ID: "1", ProductID: 1}) {
		t.Fatal("Monitor took an auction monitored already, or a user not configured")
	}
	if got := d.Auctions("alice"); len(got) != 2 || got[0].ID != "7-b" || got[1].ID != "7" || got[1].ProductID != 7 {
		t.Fatalf("Auctions = %+v, want 7-b then 7, oldest first", got)
	}
	if d.MonitorCount("alice") != 2 || !slices.Equal(d.UserProducts("alice"), []int64{7}) || d.UserProducts("carol") != nil {
		t.Fatalf("alice: %d auctions, products %v", d.MonitorCount("alice"), d.UserProducts("alice"))
	}
	got := d.AutoBidders(7)
	if len(got) != 1 || got[0].User != "alice" || got[0].AuctionID != "7" || got[0].Config != auto ||
		got[0].Cookies != "alice=1" || got[0].StateKey != key {
		t.Fatalf("AutoBidders(7) = %+v, want alice's auction 7 with her cookies", got)
	}

	a, ok := d.UpdateAuction("alice", "7-b", func(a *Auction) {
		a.Title, a.Config.AutoBid = "lot", true
		a.ID, a.ProductID = "other", 99 // an auction keeps its id and product
	})
	if !ok || a.ID != "7-b" || a.ProductID != 7 || a.Title != "lot" {
		t.Fatalf("UpdateAuction = %+v %v", a, ok)
	}
	if a, _ := d.Auction("alice", "7-b"); a.Title != "lot" || len(d.AutoBidders(7)) != 2 {
		t.Fatalf("after the update: %+v, %d auto-bidders", a, len(d.AutoBidders(7)))
	}
	if _, ok := d.UpdateAuction("bob", "7", func(*Auction) {}); ok {
		t.Fatal("bob updated alice's auction")
	}

	rec, ok := d.Record("alice")
	if !ok || rec.Cookies != "alice=1" || len(rec.Auctions) != 2 || rec.Auctions[0].Title != "lot" {
		t.Fatalf("Record = %+v %v", rec, ok)
	}
	if removed, ok := d.Unmonitor("alice", "7"); !ok || removed.ID != "7" {
		t.Fatal("Unmonitor did not return the auction")
	}
	if _, ok := d.Unmonitor("alice", "7"); ok || !d.Monitored(7) {
		t.Fatal("a second Unmonitor removed something, or 7 lost its other auction")
	}

	// A restored record replaces the auctions; a removed user's go with
	// them, and their products with their last auction.
	d.Restore("alice", Record{Auctions: []Auction{{ID: "5", ProductID: 5}}})
	if d.Monitored(7) || !d.Monitored(5) || d.MonitorCount("alice") != 1 {
		t.Fatalf("after Restore: monitored 7 %v, 5 %v", d.Monitored(7), d.Monitored(5))
	}
	d.Set(map[string]string{"bob": "b1"})
	if d.Monitored(5) || !d.Monitored(8) || d.Auctions("alice") != nil {
		t.Fatal("a removed user's auctions outlive them")
	}
	if _, ok := d.Record("alice"); ok {
		t.Fatal("a removed user still has a record")
	}
}

// TestAutoBiddersFollowEveryChange: who auto-bids on a lot follows each
// way an auction changes: monitored with auto-bid, auto-bid switched off
// and on again, unmonitored, restored from a record, the user removed.
func TestAutoBiddersFollowEveryChange(t *testing.T) {
	d := NewDirectory()
	d.Set(map[string]string{"alice": "a1", "bob": "b1"})
	on := AuctionConfig{MaxBid: 20, AutoBid: true}
	d.Monitor("alice", Auction{ID: "7", ProductID: 7, Config: on})
	d.Monitor("bob", Auction{ID: "7", ProductID: 7})
	names := func() (out []string) {
		for _, b := range d.AutoBidders(7) {
			out = append(out, b.User+"/"+b.AuctionID)
		}
		return out
	}
	check := func(step string, want ...string) {
		t.Helper()
		got := names()
		if len(got) != len(want) {
			t.Fatalf("%s: auto-bidders %v, want %v", step, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: auto-bidders %v, want %v", step, got, want)
			}
		}
	}
	check("monitored", "alice/7")
	d.UpdateAuction("bob", "7", func(a *Auction) { a.Config.AutoBid = true })
	check("bob switched it on", "alice/7", "bob/7")
	d.UpdateAuction("alice", "7", func(a *Auction) { a.Config.AutoBid = false })
	check("alice switched it off", "bob/7")
	if !d.Monitored(7) {
		t.Fatal("a config change made the lot unmonitored")
	}
	d.Unmonitor("bob", "7")
	check("bob left")
	d.Restore("bob", Record{Auctions: []Auction{{ID: "7", ProductID: 7, Config: on}}})
	check("bob restored", "bob/7")
	d.Set(map[string]string{"alice": "a1"})
	check("bob removed")
	if d.AutoBidders(7) != nil {
		t.Fatal("no auto-bidder must read as nil")
	}
}
