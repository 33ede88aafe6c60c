package module

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellissim"
)

// TestUpstreamH2TLS follows a simulator that offers h2 over TLS under a
// private authority named by upstream_ca: the lot's price and a bid reach
// the client, and the stream and the snapshot polls share one connection,
// which only h2 allows.
func TestUpstreamH2TLS(t *testing.T) {
	leavesNoGoroutine(t)
	sim := nellissim.New(nellissim.Config{Seed: 7, Auctions: 3, AuctionLength: 2 * time.Hour})
	sim.Start()
	srv, err := sim.Serve(nellissim.ServeOptions{TLS: true})
	if err != nil {
		sim.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sim.Close()
		_ = srv.Close()
	})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	startGateway(t, sim, srv.URL, srv.URL, "upstream_ca "+ca+"\n\t\tpoll_interval 500ms")
	lot := sim.Auctions()[0]
	w := watch(t, lot.ID)
	w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))
	settle(t, sim, lot.ID)
	bids := &bidder{sim: sim, id: lot.ID}
	w.awaitBid(t, bids.bid(t), time.Now().Add(2*time.Second), "sse")
	if open, accepted := srv.Open(), srv.Accepted(); open != 1 || accepted != 1 {
		t.Errorf("the stream and the polls took %d connections (%d open), want one shared h2 connection", accepted, open)
	}
}
