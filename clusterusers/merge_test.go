package clusterusers

import (
	"testing"

	"github.com/nellis-edge/gateway/users"
)

// Two nodes change different fields of one auction's config, neither
// seeing the other's change first (the user raises the maxBid in one
// window and switches to sniping in another, at once): the later save
// conflicts and merges field by field, and the stored record has both.
// A field both change is the later save's.
func TestConcurrentEditsOfOneAuctionKeepEachField(t *testing.T) {
	n := startNATS(t)
	a := newNode(t, n, false)
	a.edit(func(d *users.Directory) {
		d.Monitor("alice", users.Auction{ID: "1", ProductID: 1, AddedAt: 1,
			Config: users.AuctionConfig{MaxBid: 10, IncrementAmount: 1, Strategy: users.StrategyAuto}})
	})
	b := newNode(t, n, false)
	config := func(nd *node, change func(c *users.AuctionConfig)) {
		t.Helper()
		nd.edit(func(d *users.Directory) {
			d.UpdateAuction("alice", "1", func(au *users.Auction) { change(&au.Config) })
		})
	}
	stored := func() users.AuctionConfig {
		t.Helper()
		au, ok := auctionOf(newNode(t, n, false).record(), "1")
		if !ok {
			t.Fatal("auction 1 gone")
		}
		return au.Config
	}

	config(a, func(c *users.AuctionConfig) { c.MaxBid = 40 })
	config(b, func(c *users.AuctionConfig) { c.Strategy, c.SnipeSeconds = users.StrategySniping, 5 })
	want := users.AuctionConfig{MaxBid: 40, IncrementAmount: 1, Strategy: users.StrategySniping, SnipeSeconds: 5}
	if got := stored(); got != want {
		t.Fatalf("after maxBid on a and sniping on b: %+v, want %+v", got, want)
	}

	// Both change the maxBid, each behind the other's last save.
	config(a, func(c *users.AuctionConfig) { c.MaxBid, c.IncrementAmount = 50, 2 })
	config(b, func(c *users.AuctionConfig) { c.MaxBid = 60 })
	want = users.AuctionConfig{MaxBid: 60, IncrementAmount: 2, Strategy: users.StrategySniping, SnipeSeconds: 5}
	if got := stored(); got != want {
		t.Fatalf("after both changed the maxBid: %+v, want %+v", got, want)
	}
}
