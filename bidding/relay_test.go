package bidding

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/wsrelay"
)

// The whole path through a real relay: the extension authenticates,
// syncs cookies, starts an auto-bid auction and bids by hand over its
// socket; the engine bids for it and reports to the socket.
func TestEngineBehindARealRelay(t *testing.T) {
	// One pass, as the module builds them: the relay on the feed, the
	// engine on the relay, then the relay takes the engine as its bidder.
	var relay *wsrelay.Relay
	r := newRigWith(t, rigOptions{}, func(o *Options) {
		var err error
		relay, err = wsrelay.New(context.Background(), wsrelay.Config{Users: map[string]string{"alice": "alice-token"}},
			wsrelay.Options{Feeds: o.Feed.(wsrelay.Feeds)}) // the rig's fake feed serves a relay too
		if err != nil {
			t.Fatal(err)
		}
		o.Directory, o.Reporter = relay, relay
	})
	relay.SetBidder(r.engine)
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", relay.ServeWS)
	mux.Handle("/api/", relay.APIHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		r.engine.Close() // before the relay: it reports to it
		relay.Shutdown()
		srv.Close()
	})

	lot := r.lots[0]
	id := auctionID(lot.ID)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/auth", strings.NewReader(`{"cookies":"sim_user=alice"}`))
	req.Header.Set("Authorization", "alice-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("cookie sync: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func(want func(map[string]any) bool) map[string]any {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatalf("reading: %v", err)
			}
			if want(m) {
				return m
			}
		}
	}
	ofType := func(typ string) func(map[string]any) bool {
		return func(m map[string]any) bool { return m["type"] == typ }
	}
	send := func(v any) {
		t.Helper()
		if err := ws.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"type": "authenticate", "token": "alice-token", "requestId": "req_1"})
	read(ofType("authenticated"))

	// A manual bid over the socket; an unmonitored id that is not a
	// product id names nothing to bid on.
	send(map[string]any{"type": "placeBid", "auctionId": "lot-x", "amount": lot.NextBid, "requestId": "req_2"})
	if m := read(ofType("bidResult")); m["errorType"] != "NOT_FOUND" || !strings.HasPrefix(m["error"].(string), "Auction lot-x not found") {
		t.Errorf("bid on an unmonitored id that is not a product id: %v", m)
	}
	send(map[string]any{"type": "startMonitoring", "auctionId": id, "requestId": "req_3",
		"config":   map[string]any{"maxBid": lot.NextBid + 20, "strategy": "auto", "incrementAmount": 1, "autoBid": false},
		"metadata": map[string]any{"title": "lot", "url": "https://www.nellisauction.com/p/x/" + id}})
	read(ofType("response"))
	send(map[string]any{"type": "placeBid", "auctionId": id, "amount": lot.NextBid, "requestId": "req_4"})
	if m := read(ofType("bidResult")); m["success"] != true || m["requestId"] != "req_4" {
		t.Errorf("manual bid: %v", m)
	}

	// Auto-bid on: the relay would call Refresh on updateConfig.
	send(map[string]any{"type": "updateConfig", "auctionId": id, "requestId": "req_5", "config": map[string]any{"autoBid": true}})
	read(ofType("response"))
	r.engine.Refresh(lot.ID)
	r.settle()
	r.rivalBid(lot.ID, r.lot(lot.ID).NextBid+2)
	m := read(func(m map[string]any) bool {
		state, _ := m["state"].(map[string]any)
		return m["type"] == "autoBidState" && state["status"] == StatusWinning
	})
	if m["auctionId"] != id || m["requestId"] != nil {
		t.Errorf("state push %v", m)
	}
	bids := m["state"].(map[string]any)["bids"].([]any)
	if len(bids) != 2 || bids[0].(map[string]any)["strategy"] != StrategyManual || bids[1].(map[string]any)["strategy"] != StrategyAuto {
		b, _ := json.Marshal(bids)
		t.Errorf("history %s", b)
	}
	if r.lot(lot.ID).Leader != "alice" {
		t.Error("alice is not leading")
	}

	// The same lot started again by its URL, under an id of the
	// extension's own, with a higher maximum: the same lot, so no bid
	// against alice's own lead, and the state shows under the new id.
	sent := len(r.bidsSent())
	send(map[string]any{"type": "startMonitoring", "auctionId": "lot-by-url", "requestId": "req_6",
		"config":   map[string]any{"maxBid": lot.NextBid + 500, "strategy": "auto", "autoBid": true},
		"metadata": map[string]any{"title": "lot", "url": "https://www.nellisauction.com/p/some-slug/" + id}})
	if m := read(ofType("response")); m["auctionId"] != "lot-by-url" || m["success"] != true {
		t.Errorf("start by URL: %v", m)
	}
	r.engine.Refresh(lot.ID)
	r.settle()
	r.publish(lot.ID)
	m = read(func(m map[string]any) bool { return m["type"] == "autoBidState" && m["auctionId"] == "lot-by-url" })
	if state := m["state"].(map[string]any); state["status"] != StatusWinning || len(state["bids"].([]any)) != 2 {
		t.Errorf("the URL's id does not show the lot's state: %v", m)
	}
	if n := len(r.bidsSent()); n != sent {
		t.Errorf("%d bids through the second id of a lot alice leads", n-sent)
	}
}

// Bids like the old backend's: over the socket and through REST, on lots
// the user does not monitor, named by product id, with the user's synced
// cookies, answered with the classified bidResult.
func TestUnmonitoredBidsBehindARealRelay(t *testing.T) {
	r := newRig(t, rigOptions{auctions: 3})
	relay, err := wsrelay.New(context.Background(), wsrelay.Config{Users: map[string]string{"alice": "alice-token", "bob": "bob-token"}},
		wsrelay.Options{Feeds: r.feed, Bidder: r.engine})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", relay.ServeWS)
	mux.Handle("/api/", relay.APIHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		r.engine.Close()
		relay.Shutdown()
		srv.Close()
	})
	rest := func(token, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	if code, m := rest("alice-token", "/api/auth", `{"cookies":"sim_user=alice"}`); code != http.StatusOK {
		t.Fatalf("cookie sync: %d %v", code, m)
	}
	dial := func(token string) func(map[string]any) map[string]any {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		// ask sends v and returns the bidResult answering it; anything
		// else about the auction on the way is an error.
		ask := func(v map[string]any) map[string]any {
			t.Helper()
			if err := ws.WriteJSON(v); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				var m map[string]any
				if err := ws.ReadJSON(&m); err != nil {
					t.Fatalf("reading: %v", err)
				}
				switch m["type"] {
				case "autoBidState", "auctionState", "error":
					t.Errorf("unexpected %v", m)
				case "bidResult", "authenticated":
					return m
				}
			}
		}
		ask(map[string]any{"type": "authenticate", "token": token, "requestId": "auth"})
		return ask
	}
	alice := dial("alice-token")

	open, other, closed := r.lots[0], r.lots[1], r.lots[2]
	m := alice(map[string]any{"type": "placeBid", "auctionId": auctionID(open.ID), "amount": open.NextBid, "requestId": "req_1"})
	if m["success"] != true || m["auctionId"] != auctionID(open.ID) || m["amount"] != float64(open.NextBid) || m["requestId"] != "req_1" || m["data"] == nil {
		t.Errorf("socket bid on an unmonitored lot: %v", m)
	}
	// Leading zeros name the same product, as in startMonitoring.
	code, body := rest("alice-token", "/api/auctions/0"+auctionID(other.ID)+"/bid", fmt.Sprintf(`{"amount":%d}`, other.NextBid))
	if code != http.StatusOK || body["success"] != true || body["data"] == nil {
		t.Errorf("REST bid on an unmonitored lot: %d %v", code, body)
	}
	if got := r.lot(open.ID); got.Leader != "alice" || got.CurrentBid != open.NextBid {
		t.Errorf("lot %d after alice's socket bid: leader %q at %v", open.ID, got.Leader, got.CurrentBid)
	}
	if got := r.lot(other.ID); got.Leader != "alice" {
		t.Errorf("lot %d after alice's REST bid: leader %q", other.ID, got.Leader)
	}
	for _, b := range r.bidsSent() {
		if b.user != "alice" {
			t.Errorf("a bid sent without alice's cookies: %+v", b)
		}
	}

	// A closed lot: Nellis's answer classifies it.
	if err := r.sim.CloseLot(closed.ID); err != nil {
		t.Fatal(err)
	}
	m = alice(map[string]any{"type": "placeBid", "auctionId": auctionID(closed.ID), "amount": closed.NextBid + 5, "requestId": "req_2"})
	if m["success"] != false || m["errorType"] != "AUCTION_ENDED" || m["retryable"] != false {
		t.Errorf("socket bid on a closed unmonitored lot: %v", m)
	}
	code, body = rest("alice-token", "/api/auctions/"+auctionID(closed.ID)+"/bid", fmt.Sprintf(`{"amount":%d}`, closed.NextBid+6))
	if code != http.StatusBadRequest || body["errorType"] != "AUCTION_ENDED" {
		t.Errorf("REST bid on a closed unmonitored lot: %d %v", code, body)
	}

	// A user without cookies is told to sync them; nothing is sent.
	sent := len(r.bidsSent())
	bob := dial("bob-token")
	m = bob(map[string]any{"type": "placeBid", "auctionId": auctionID(open.ID), "amount": open.NextBid + 50, "requestId": "req_3"})
	if m["success"] != false || m["errorType"] != ErrTypeNoCookies {
		t.Errorf("socket bid without cookies: %v", m)
	}
	code, body = rest("bob-token", "/api/auctions/"+auctionID(open.ID)+"/bid", fmt.Sprintf(`{"amount":%d}`, open.NextBid+50))
	if code != http.StatusBadRequest || body["errorType"] != ErrTypeNoCookies {
		t.Errorf("REST bid without cookies: %d %v", code, body)
	}
	// An id that is neither monitored nor a product id.
	code, body = rest("bob-token", "/api/auctions/lot-x/bid", `{"amount":10}`)
	if code != http.StatusNotFound || body["errorType"] != "NOT_FOUND" || !strings.Contains(body["error"].(string), "numeric Nellis product id") {
		t.Errorf("REST bid on an id that names no product: %d %v", code, body)
	}
	if n := len(r.bidsSent()); n != sent {
		t.Errorf("%d bids sent for bob", n-sent)
	}

	// dry_run and bidding off answer as for a monitored auction.
	if err := r.engine.UpdateConfig(Config{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	m = alice(map[string]any{"type": "placeBid", "auctionId": auctionID(open.ID), "amount": open.NextBid + 60, "requestId": "req_4"})
	if m["success"] != false || m["errorType"] != ErrTypeDryRun {
		t.Errorf("socket bid in a dry run: %v", m)
	}
	if err := r.engine.UpdateConfig(Config{Off: true}); err != nil {
		t.Fatal(err)
	}
	code, body = rest("alice-token", "/api/auctions/"+auctionID(open.ID)+"/bid", fmt.Sprintf(`{"amount":%d}`, open.NextBid+70))
	if code != http.StatusNotImplemented || body["errorType"] != ErrTypeDisabled {
		t.Errorf("REST bid with bidding off: %d %v", code, body)
	}
	if n := len(r.bidsSent()); n != sent {
		t.Errorf("%d bids sent in a dry run or with bidding off", n-sent)
	}
}
