package bidding

import (
	"context"
	"encoding/json"
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

	// A manual bid over the socket.
	send(map[string]any{"type": "placeBid", "auctionId": id, "amount": lot.NextBid, "requestId": "req_2"})
	if m := read(func(m map[string]any) bool { return m["type"] == "error" || m["type"] == "bidResult" }); m["error"] != "Auction "+id+" not found" {
		t.Errorf("bid on an auction not monitored: %v", m)
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
