package bidding

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/nellissim"
	"github.com/nellis-edge/gateway/sseupstream"
)

// The engine on the real hub, fed by the simulator's SSE streams: each rival
// jump bid reaches the engine as a live event and is answered, until the
// next bid would pass the maximum.
func TestAutoBidDrivenByTheRealHubOverSSE(t *testing.T) {
	sim := nellissim.New(nellissim.Config{Seed: 11, Auctions: 1, PingInterval: 200 * time.Millisecond})
	sim.Start()
	t.Cleanup(sim.Close)
	rep := &fakeReporter{}
	e, dir := engineOverSSE(t, sim, Config{}, rep)

	lot := sim.Auctions()[0]
	current := func() nellissim.Auction { return sim.Auctions()[0] }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; lot %+v, state %+v", what, current(), rep.last("alice", auctionID(lot.ID)))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if err := sim.EmitBid(lot.ID, lot.NextBid, "rival"); err != nil {
		t.Fatal(err)
	}
	first := current().NextBid
	maxBid := first + 6
	dir.set(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(maxBid), Strategy: StrategyAuto, AutoBid: true}))
	e.Refresh(lot.ID)

	for want := first; want <= maxBid; want += 2 {
		waitFor("alice to lead at $"+itoa(want), func() bool { a := current(); return a.Leader == "alice" && a.CurrentBid == want })
		if err := sim.EmitBid(lot.ID, want+1, "rival"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("max reached", func() bool {
		s, ok := e.State("alice", auctionID(lot.ID))
		return ok && s.Status == StatusMaxReached && e.active.Load() == 0
	})
	s, _ := e.State("alice", auctionID(lot.ID))
	if len(s.Bids) != 4 || s.Bids[3].Amount != maxBid || !s.MaxBidReached || s.Winning {
		t.Errorf("state %+v", s)
	}
	for _, b := range s.Bids {
		if b.Amount > maxBid || b.Result != string(nellis.BidAccepted) {
			t.Errorf("bid %+v", b)
		}
	}
	if a := current(); a.Leader != "rival" || a.CurrentBid != maxBid+1 {
		t.Errorf("lot %+v", a)
	}
}

func itoa(n int) string { return auctionID(int64(n)) }

// engineOverSSE serves handler (the simulator, or a wrapper of it) and
// returns an engine with its Nellis client and the real hub, following
// the served SSE streams, on it. Everything ends when tb does.
func engineOverSSE(tb testing.TB, handler http.Handler, cfg Config, rep Reporter) (*Engine, *fakeDirectory) {
	tb.Helper()
	srv := httptest.NewServer(handler)
	tb.Cleanup(srv.Close)
	transport := &http.Transport{}
	tb.Cleanup(transport.CloseIdleConnections)
	client, err := nellis.NewClient(nellis.ClientConfig{APIEndpoint: srv.URL, Format: nellis.FormatJSON, HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		tb.Fatal(err)
	}
	h := hub.New(hub.Config{UseSSE: true, SSE: sseupstream.Config{Endpoint: srv.URL, HTTPClient: &http.Client{Transport: transport}}},
		hub.Deps{Snapshots: client})
	tb.Cleanup(h.Close)
	dir := &fakeDirectory{watchers: make(map[int64][]Watcher)}
	e, err := New(cfg, Options{Placer: client, Feed: h, Directory: dir, Reporter: rep})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	return e, dir
}
