package wsrelay_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/bidding"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/wsrelay"
)

// feed is one product's feed for both the relay and the engine.
type feed struct {
	mu     sync.Mutex
	subs   map[int]hub.Subscriber
	nextID int
	state  *hub.Change
}

func (f *feed) Subscribe(_ int64, s hub.Subscriber) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = make(map[int]hub.Subscriber)
	}
	id := f.nextID
	f.nextID++
	f.subs[id] = s
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

func (f *feed) State(int64) (*hub.Change, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.state != nil
}

func (f *feed) Since(int64, string, uint64) ([]*hub.Change, bool) { return nil, false }

// placer is Nellis's bids API: cookies "expired" are refused, others win.
type placer struct{ bids chan string }

func (p placer) PlaceBid(_ context.Context, _ int64, amount int, cookies string) (nellis.BidResult, error) {
	p.bids <- cookies
	now := time.Now()
	if cookies == "expired" {
		return nellis.BidResult{Outcome: nellis.BidAuthRequired, Status: http.StatusUnauthorized, Message: "login required", SentAt: now, ReceivedAt: now}, nil
	}
	return nellis.BidResult{Outcome: nellis.BidAccepted, Status: http.StatusOK, SentAt: now, ReceivedAt: now,
		Data: nellis.BidData{CurrentAmount: float64(amount), MinimumNextBid: float64(amount + 1), BidCount: 2}}, nil
}

// The engine wired to the relay as the module wires it: expired cookies
// stop auto-bidding and the extension's auction shows the error; fresh
// cookies synced over REST make the engine bid again at once; the
// auction's snipe window reaches the engine; stopping forgets the state.
func TestEngineDrivenThroughTheHooks(t *testing.T) {
	const productID = 100
	p := nellis.Product{ID: productID, Title: "lot", CurrentBid: 10, NextBid: 11, BidCount: 1, BidderCount: 1,
		MarketStatus: "open", CloseTime: time.Now().Add(time.Hour)}
	data, _ := json.Marshal(p)
	f := &feed{state: &hub.Change{ProductID: productID, Epoch: "e", Seq: 1, Source: hub.SourceSSE, ReceivedAt: time.Now(), Product: p, JSON: data}}
	bids := placer{bids: make(chan string, 4)}

	// One pass, as the module builds them: the relay, the engine on it,
	// then the relay takes the engine as its bidder and auto-bid hooks.
	relay, err := wsrelay.New(context.Background(), wsrelay.Config{Users: map[string]string{"alice": "alice-token"}},
		wsrelay.Options{Feeds: f})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := bidding.New(bidding.Config{}, bidding.Options{Placer: bids, Feed: f, Directory: relay, Reporter: relay})
	if err != nil {
		relay.Shutdown()
		t.Fatal(err)
	}
	relay.SetBidder(engine)
	relay.SetAutoBid(wsrelay.AutoBidHooks{Refresh: engine.Refresh, Forget: engine.Forget,
		State: engine.State})
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", relay.ServeWS)
	mux.Handle("/api/", relay.APIHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		engine.Close() // before the relay: it reports to it
		relay.Shutdown()
		srv.Close()
	})
	syncCookies := func(cookies string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/auth", strings.NewReader(`{"cookies":"`+cookies+`"}`))
		req.Header.Set("Authorization", "alice-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("cookie sync: %d", resp.StatusCode)
		}
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	send := func(v any) {
		t.Helper()
		if err := ws.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	// awaitAuction reads until an auctionState satisfies want.
	awaitAuction := func(what string, want func(a, autoBid map[string]any) bool) map[string]any {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if m["type"] != "auctionState" {
				continue
			}
			a := m["auction"].(map[string]any)
			ab, _ := a["autoBid"].(map[string]any)
			if want(a, ab) {
				return a
			}
		}
	}

	syncCookies("expired")
	send(map[string]any{"type": "authenticate", "token": "alice-token"})
	send(map[string]any{"type": "startMonitoring", "auctionId": "100", "requestId": "s",
		"config": map[string]any{"maxBid": 50, "strategy": "auto", "autoBid": true, "snipeSeconds": 20}})
	if c := <-bids.bids; c != "expired" {
		t.Fatalf("bid sent with %q", c)
	}
	a := awaitAuction("refused cookies", func(a, ab map[string]any) bool { return a["status"] == "error" })
	if msg, _ := a["error"].(string); !strings.Contains(msg, "sign in on nellisauction.com again") || a["message"] != msg {
		t.Errorf("the user is not told why: %v", a)
	}
	if got := relay.AutoBidders(productID); len(got) != 1 || got[0].Config.SnipeSeconds != 20 || got[0].Cookies != "expired" {
		t.Errorf("the engine sees %+v", got)
	}

	// Fresh cookies: the sync itself makes the engine bid again.
	syncCookies("fresh")
	if c := <-bids.bids; c != "fresh" {
		t.Fatalf("bid sent with %q", c)
	}
	a = awaitAuction("winning", func(a, ab map[string]any) bool { return ab["status"] == bidding.StatusWinning })
	if a["status"] != "monitoring" || a["error"] != nil {
		t.Errorf("after fresh cookies %v", a)
	}
	if recs := autoBidBids(a); len(recs) != 2 || recs[0]["result"] != "auth_required" || recs[1]["result"] != "accepted" || recs[1]["amount"] != 11.0 {
		t.Errorf("history %v", recs)
	}

	send(map[string]any{"type": "stopMonitoring", "auctionId": "100", "requestId": "x"})
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m["requestId"] == "x" {
			break
		}
	}
	if _, ok := engine.State("alice", "100"); ok {
		t.Error("the engine kept the state of an auction no longer monitored")
	}
	if len(bids.bids) != 0 {
		t.Error("an extra bid was sent")
	}
}

func autoBidBids(a map[string]any) []map[string]any {
	var out []map[string]any
	ab, _ := a["autoBid"].(map[string]any)
	list, _ := ab["bids"].([]any)
	for _, b := range list {
		out = append(out, b.(map[string]any))
	}
	return out
}
