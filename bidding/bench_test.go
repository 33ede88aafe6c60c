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

// BenchmarkOutbidReactionOverSSE measures how fast an auto-bidder answers
// an outbid: from a rival's bid on the simulator, through its SSE stream,
// the real hub and the engine, to the answering bid arriving at the
// simulator (reaction-µs), and until that bid's answer is applied
// (ns/op, which adds the bid's round trip).
func BenchmarkOutbidReactionOverSSE(b *testing.B) {
	sim := nellissim.New(nellissim.Config{Seed: 11, Auctions: 1})
	sim.Start()
	defer sim.Close()
	arrived := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/bids" {
			arrived <- time.Now()
		}
		sim.ServeHTTP(w, r)
	}))
	defer srv.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client, err := nellis.NewClient(nellis.ClientConfig{APIEndpoint: srv.URL, Format: nellis.FormatJSON, HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		b.Fatal(err)
	}
	h := hub.New(hub.Config{UseSSE: true, SSE: sseupstream.Config{Endpoint: srv.URL, HTTPClient: &http.Client{Transport: transport}}},
		hub.Deps{Snapshots: client})
	defer h.Close()
	dir := &fakeDirectory{watchers: make(map[int64][]Watcher)}
	e, err := New(Config{BidsPerMinute: 1 << 30}, Options{Placer: client, Feed: h, Directory: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()

	lot := sim.Auctions()[0]
	dir.set(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: nellis.MaxBidAmount, Strategy: StrategyAuto, AutoBid: true}))
	e.Refresh(lot.ID)
	settled := func() {
		for {
			s, ok := e.State("alice", auctionID(lot.ID))
			if ok && s.Winning && e.active.Load() == 0 {
				return
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	if err := sim.EmitBid(lot.ID, lot.NextBid, "rival"); err != nil {
		b.Fatal(err)
	}
	<-arrived
	settled()

	var reaction time.Duration
	b.ResetTimer()
	for b.Loop() {
		emitted := time.Now()
		if err := sim.EmitBid(lot.ID, sim.Auctions()[0].NextBid, "rival"); err != nil {
			b.Fatal(err)
		}
		reaction += (<-arrived).Sub(emitted)
		settled()
	}
	b.ReportMetric(float64(reaction.Microseconds())/float64(b.N), "reaction-µs")
}
