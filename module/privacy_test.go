package module

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	aliceToken = "alice-token-7f3a9c2e"
	bobToken   = "bob-token-51d0e8b4"
)

// signIn dials the gateway as the extension and authenticates with token.
func signIn(t *testing.T, token string) *extension {
	t.Helper()
	e, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	e.send(map[string]any{"type": "authenticate", "token": token, "requestId": "req_1"})
	if m := e.next("authenticated", 5*time.Second, nil); m["success"] != true {
		t.Fatalf("authenticate: %v", m)
	}
	return e
}

// messageData is the data of an auctionState or auctionUpdate, nil for
// another message.
func messageData(m map[string]any) map[string]any {
	var data map[string]any
	switch m["type"] {
	case "auctionState":
		a, _ := m["auction"].(map[string]any)
		data, _ = a["data"].(map[string]any)
	case "auctionUpdate":
		data, _ = m["data"].(map[string]any)
	}
	return data
}

// until reads every message, passing each to check, until one of type
// typ whose data shows price.
func (e *extension) until(typ string, price float64, check func(m map[string]any)) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = e.conn.SetReadDeadline(deadline)
		var m map[string]any
		if err := e.conn.ReadJSON(&m); err != nil {
			e.t.Fatalf("waiting for %s at $%v: %v", typ, price, err)
		}
		check(m)
		if d := messageData(m); m["type"] == typ && d != nil && d["currentBid"] == price {
			return
		}
	}
}

// TestUserStateThroughCaddy is issue 11's two-user test through a real
// Caddy and the simulator, which answers userState per the request's
// cookie: alice synced cookies and leads; bob has none and watches the
// same lot from one socket and subscribed to it from another. Snapshots
// are fetched with alice's cookies, yet bob never sees her standing.
func TestUserStateThroughCaddy(t *testing.T) {
	sim, simURL := newSimulator(t)
	loadCaddy(t, gatewayConfig(simURL, t.TempDir(), fmt.Sprintf(
		"use_sse off\n\t\tpoll_interval 200ms\n\t\tuser alice %s\n\t\tuser bob %s", aliceToken, bobToken)))

	lot := sim.Auctions()[1]
	for _, amount := range []int{lot.NextBid, lot.NextBid + 100} { // alice leads, up to $100 more
		if err := sim.EmitBid(lot.ID, amount, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9080/api/auth", strings.NewReader(`{"cookies":"sim_user=alice"}`))
	req.Header.Set("Authorization", aliceToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("alice's cookie sync: %s", res.Status)
	}

	start := func(e *extension) {
		e.send(map[string]any{
			"type": "startMonitoring", "auctionId": itoa(lot.ID), "requestId": "req_2",
			"config":   map[string]any{"maxBid": 5, "strategy": "sniping", "incrementAmount": 1, "autoBid": false},
			"metadata": map[string]any{"source": "test", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", lot.ID)},
		})
	}
	alice := signIn(t, aliceToken)
	start(alice)
	price := float64(lotNow(t, sim, lot.ID).CurrentBid)
	isAlices := func(m map[string]any) {
		if d := messageData(m); d != nil && d["currentBid"] == price && (d["isWinning"] != true || d["isWatching"] != true) {
			t.Fatalf("alice's own state at $%v: %v", price, d)
		}
	}
	alice.until("auctionState", price, isAlices)

	neverAlices := func(who string) func(map[string]any) {
		return func(m map[string]any) {
			d := messageData(m)
			if d == nil {
				return
			}
			if d["isWinning"] != false || d["isWatching"] != false {
				t.Fatalf("%s got alice's user state: %s %v", who, m["type"], d)
			}
			if want := d["currentBid"].(float64) + 1; d["nextBid"] != want {
				t.Fatalf("%s got next bid %v, want the public %v", who, d["nextBid"], want)
			}
		}
	}
	bob, bobSub := signIn(t, bobToken), signIn(t, bobToken)
	start(bob)
	bob.until("auctionState", price, neverAlices("bob"))
	bobSub.send(map[string]any{"type": "subscribe", "auctionId": itoa(lot.ID), "requestId": "req_3"})
	bobSub.until("auctionUpdate", price, neverAlices("bob's subscribe socket"))

	// A rival bids below alice's maximum: everyone sees the price from a
	// snapshot fetched with her cookies; she alone sees that she leads.
	if err := sim.EmitBid(lot.ID, lotNow(t, sim, lot.ID).NextBid, "rival"); err != nil {
		t.Fatal(err)
	}
	price = float64(lotNow(t, sim, lot.ID).CurrentBid)
	bob.until("auctionState", price, neverAlices("bob"))
	bobSub.until("auctionUpdate", price, neverAlices("bob's subscribe socket"))
	alice.until("auctionState", price, isAlices)
	loadCaddy(t, noGatewayConfig)
}
