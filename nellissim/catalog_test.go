package nellissim

import (
	"reflect"
	"testing"
	"time"
)

func TestSameSeedListsSameAuctions(t *testing.T) {
	clock := newFakeClock()
	a := New(Config{Seed: 42, Now: clock.Now})
	b := New(Config{Seed: 42, Now: clock.Now})
	c := New(Config{Seed: 43, Now: clock.Now})
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	t.Cleanup(c.Close)

	if !reflect.DeepEqual(a.Auctions(), b.Auctions()) {
		t.Errorf("same seed, different auctions:\n%+v\n%+v", a.Auctions(), b.Auctions())
	}
	if !reflect.DeepEqual(a.rivals, b.rivals) {
		t.Errorf("same seed, different bidder names: %v vs %v", a.rivals, b.rivals)
	}
	if reflect.DeepEqual(a.Auctions(), c.Auctions()) {
		t.Error("different seeds listed identical auctions")
	}
}

func TestCatalogueDefaultsAndSpread(t *testing.T) {
	clock := newFakeClock()
	start := clock.Now()
	sim := New(Config{Seed: 7, Now: clock.Now})
	t.Cleanup(sim.Close)

	auctions := sim.Auctions()
	if len(auctions) != defaultAuctions {
		t.Fatalf("%d auctions, want the default %d", len(auctions), defaultAuctions)
	}
	seen := map[int64]bool{}
	for _, a := range auctions {
		if seen[a.ID] {
			t.Errorf("duplicate id %d", a.ID)
		}
		seen[a.ID] = true
		if a.CloseTime.Before(start.Add(2*time.Minute)) || a.CloseTime.After(start.Add(defaultAuctionLength)) {
			t.Errorf("lot %d closes at %s, outside [start+2m, start+30m]", a.ID, a.CloseTime)
		}
		if a.Title == "" || a.RetailPrice <= 0 || a.NextBid != a.CurrentBid+1 || a.IsClosed {
			t.Errorf("implausible lot %+v", a)
		}
		if want := "/p/" + slugOf(a.Title) + "/"; len(a.Path) <= len(want) || a.Path[:len(want)] != want {
			t.Errorf("path %q does not start with %q", a.Path, want)
		}
	}
}

func TestShortAuctionLengthClosesEveryLotThen(t *testing.T) {
	clock := newFakeClock()
	sim := New(Config{Auctions: 3, AuctionLength: time.Minute, Now: clock.Now})
	t.Cleanup(sim.Close)
	for _, a := range sim.Auctions() {
		if !a.CloseTime.Equal(clock.Now().Add(time.Minute)) {
			t.Errorf("lot %d closes at %s, want start+1m", a.ID, a.CloseTime)
		}
	}
}

func TestSlugOf(t *testing.T) {
	for title, want := range map[string]string{
		`Desk (width 22"-36") & Accessories`: "Desk-width-22-36-Accessories",
		"Keurig Coffee Maker":                "Keurig-Coffee-Maker",
		"":                                   "",
	} {
		if got := slugOf(title); got != want {
			t.Errorf("slugOf(%q) = %q, want %q", title, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Auctions: -1}, {BidInterval: -time.Second}, {PingInterval: -1},
		{AuctionLength: -1}, {ExtensionInterval: -5}, {SnapshotFormat: "xml"},
	}
	for _, cfg := range bad {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v: want an error", cfg)
		}
	}
	if err := (Config{SnapshotFormat: SnapshotHTML}).Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}
