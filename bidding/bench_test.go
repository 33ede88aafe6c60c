package bidding

import (
	"net/http"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/nellissim"
)

// BenchmarkOutbidReactionOverSSE measures how fast an auto-bidder answers
// an outbid: from a rival's bid on the simulator, through its SSE stream,
// the real hub and the engine, to the answering bid arriving at the
// simulator (reaction-µs), and until that bid's answer is applied
// (ns/op, which adds the bid's round trip).
func BenchmarkOutbidReactionOverSSE(b *testing.B) {
	sim := nellissim.New(nellissim.Config{Seed: 11, Auctions: 1})
	sim.Start()
	b.Cleanup(sim.Close)
	arrived := make(chan time.Time, 1)
	e, dir := engineOverSSE(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/bids" {
			arrived <- time.Now()
		}
		sim.ServeHTTP(w, r)
	}), Config{BidsPerMinute: 1 << 30}, nil)

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
