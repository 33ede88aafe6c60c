package module

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBiddingThroughCaddy: a manual bid goes from the extension's socket
// through the gateway to Nellis with the user's synced cookies, and the
// answer comes back as bidResult with the request's id.
func TestBiddingThroughCaddy(t *testing.T) {
	sim, simURL := newSimulator(t)
	loadCaddy(t, gatewayConfig(simURL, t.TempDir(), ""))
	lot := sim.Auctions()[1]

	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	ext.monitor(lot.ID)
	ext.next("auctionState", 5*time.Second, priceIs(lot.ID, float64(lot.CurrentBid)))

	// Without synced cookies the gateway cannot bid for the user.
	ext.send(map[string]any{"type": "placeBid", "auctionId": itoa(lot.ID), "amount": lot.NextBid, "requestId": "req_b1"})
	m := ext.next("bidResult", 5*time.Second, nil)
	if m["success"] != false || m["requestId"] != "req_b1" || !strings.Contains(strings.ToLower(m["error"].(string)), "cookie") {
		t.Fatalf("bid without cookies: %v", m)
	}

	// The extension syncs the user's Nellis cookies over REST.
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9080/api/auth", strings.NewReader(`{"cookies":"sim_user=alice"}`))
	req.Header.Set("Authorization", testToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("cookie sync: %s", res.Status)
	}

	ext.send(map[string]any{"type": "placeBid", "auctionId": itoa(lot.ID), "amount": lot.NextBid, "requestId": "req_b2"})
	m = ext.next("bidResult", 5*time.Second, nil)
	if m["success"] != true || m["requestId"] != "req_b2" {
		t.Fatalf("bid with cookies: %v", m)
	}
	// Nellis (the simulator) took alice's bid, and the new price reaches
	// the client.
	ext.next("auctionState", 5*time.Second, priceIs(lot.ID, float64(lot.NextBid)))
	if leader := lotNow(t, sim, lot.ID).Leader; leader != "alice" {
		t.Errorf("the simulator's leader is %q, want alice", leader)
	}
}
