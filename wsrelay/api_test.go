package wsrelay

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// apiCall sends a request with a raw Authorization token and checks the status.
func apiCall(t *testing.T, f *fixture, method, path, token, body string, wantStatus int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	return do(t, req, wantStatus)
}

func do(t *testing.T, req *http.Request, wantStatus int) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %d %s, want %d", req.Method, req.URL.Path, resp.StatusCode, data, wantStatus)
	}
	var m map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", req.Method, req.URL.Path, data)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
	}
	return m
}

func TestAPI(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	alice := f.login(tokenAlice)
	startMonitoring(alice, "58040119", 45)

	t.Run("token required", func(t *testing.T) {
		if m := apiCall(t, f, "GET", "/api/status", "", "", http.StatusUnauthorized); m["error"] != "Not authenticated" {
			t.Errorf("%v", m)
		}
		apiCall(t, f, "GET", "/api/status", "wrong", "", http.StatusUnauthorized)
		apiCall(t, f, "GET", "/api/status", "Bearer wrong", "", http.StatusUnauthorized)
	})
	t.Run("status raw and bearer", func(t *testing.T) {
		if m := apiCall(t, f, "GET", "/api/status", tokenAlice, "", http.StatusOK); m["success"] != true || m["user"] != "alice" || m["monitoredAuctions"] != 1.0 {
			t.Errorf("%v", m)
		}
		apiCall(t, f, "GET", "/api/status", "Bearer "+tokenBob, "", http.StatusOK)
	})
	t.Run("auctions", func(t *testing.T) {
		m := apiCall(t, f, "GET", "/api/auctions", tokenAlice, "", http.StatusOK)
		var want map[string]any
		_ = json.Unmarshal(sample(t, "http_get_api_auctions.response.json"), &want)
		if diffs := sameShape("$", want, m); len(diffs) > 0 {
			t.Errorf("differs from the sample: %v", diffs)
		}
		if list := apiCall(t, f, "GET", "/api/auctions", tokenBob, "", http.StatusOK)["auctions"].([]any); len(list) != 0 {
			t.Errorf("bob sees %v", list)
		}
	})
	t.Run("cookies", func(t *testing.T) {
		apiCall(t, f, "POST", "/api/auth", tokenAlice, string(sample(t, "http_post_api_auth.request.json")), http.StatusOK)
		if m := apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":""}`, http.StatusBadRequest); !strings.Contains(m["error"].(string), "kept") {
			t.Errorf("%v", m)
		}
		if m := apiCall(t, f, "GET", "/api/status", tokenAlice, "", http.StatusOK); m["cookiesSynced"] != true {
			t.Error("an empty sync dropped the cookies synced before")
		}
		apiCall(t, f, "POST", "/api/auth", tokenAlice, `not json`, http.StatusBadRequest)
		apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"`+strings.Repeat("x", 70<<10)+`"}`, http.StatusRequestEntityTooLarge)
	})
	t.Run("config", func(t *testing.T) {
		m := apiCall(t, f, "PUT", "/api/auctions/58040119/config", tokenAlice, string(sample(t, "http_put_api_auction_config.request.json")), http.StatusOK)
		if m["config"].(map[string]any)["maxBid"] != 50.0 {
			t.Errorf("%v", m)
		}
		// The open socket hears of it.
		if a := auctionOf(alice.expectType("auctionState")); a["config"].(map[string]any)["maxBid"] != 50.0 {
			t.Errorf("pushed %v", a)
		}
		apiCall(t, f, "PUT", "/api/auctions/58040119/config", tokenBob, `{"config":{"maxBid":1}}`, http.StatusNotFound)
		apiCall(t, f, "PUT", "/api/auctions/58040119/config", tokenAlice, `{"config":{"maxBid":-1}}`, http.StatusBadRequest)
		apiCall(t, f, "PUT", "/api/auctions/58040119/config", tokenAlice, `{}`, http.StatusBadRequest)
		apiCall(t, f, "PUT", "/api/auctions/..%2Fx/config", tokenAlice, `{"config":{"maxBid":1}}`, http.StatusBadRequest)
	})
	t.Run("bid", func(t *testing.T) {
		m := apiCall(t, f, "POST", "/api/auctions/58040119/bid", tokenAlice, string(sample(t, "http_post_api_auction_bid.request.json")), http.StatusNotImplemented)
		var want map[string]any
		_ = json.Unmarshal(sample(t, "http_post_api_auction_bid.response.failure.json"), &want)
		if diffs := sameShape("$", want, m); len(diffs) > 0 || m["errorType"] != "BIDDING_DISABLED" {
			t.Errorf("%v %v", m, diffs)
		}
		apiCall(t, f, "POST", "/api/auctions/58040119/bid", tokenAlice, `{"amount":0}`, http.StatusBadRequest)
	})
	t.Run("routing", func(t *testing.T) {
		apiCall(t, f, "DELETE", "/api/auctions", tokenAlice, "", http.StatusMethodNotAllowed)
		apiCall(t, f, "GET", "/api/nope", tokenAlice, "", http.StatusNotFound)
	})
	t.Run("health", func(t *testing.T) {
		// Public: up or ready, and no count of users, sockets or auctions.
		for path, want := range map[string]string{"/health": "ok", "/health/live": "ok", "/health/ready": "ready"} {
			if m := apiCall(t, f, "GET", path, "", "", http.StatusOK); len(m) != 1 || m["status"] != want {
				t.Errorf("GET %s: %v, want only status %q", path, m, want)
			}
		}
	})
	t.Run("cors", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", f.srv.URL+"/api/auctions", nil)
		req.Header.Set("Origin", "chrome-extension://good")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "chrome-extension://good" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		req, _ = http.NewRequest("GET", f.srv.URL+"/api/status", nil)
		req.Header.Set("Origin", "chrome-extension://evil")
		req.Header.Set("Authorization", tokenAlice)
		do(t, req, http.StatusForbidden)
	})
}

func TestAPIReadyFailsDuringShutdown(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	f.relay.Shutdown()
	apiCall(t, f, "GET", "/health/ready", "", "", http.StatusServiceUnavailable)
}

// fakeBidder records bids and accepts them.
type fakeBidder struct {
	got  chan Bid
	data json.RawMessage // Nellis's answer
}

func (b fakeBidder) PlaceBid(_ context.Context, bid Bid) (BidResult, error) {
	b.got <- bid
	return BidResult{Success: true, Data: b.data}, nil
}

func (fakeBidder) BidTimeout() time.Duration { return 10 * time.Second }

// silentBidder never hears back from Nellis: it waits for the relay to give
// up on the bid.
type silentBidder struct{ timeout time.Duration }

func (b silentBidder) PlaceBid(ctx context.Context, _ Bid) (BidResult, error) {
	<-ctx.Done()
	return BidResult{}, ctx.Err()
}

func (b silentBidder) BidTimeout() time.Duration { return b.timeout }

// The relay waits for a bid as long as the bidder's configured bid_timeout
// (and a margin), not a fixed time of its own: a bid Nellis never answers
// is answered to the user soon after bid_timeout.
func TestBidWaitFollowsTheBidTimeout(t *testing.T) {
	f := newFixture(t, testConfig(), Options{Bidder: silentBidder{timeout: 100 * time.Millisecond}})
	c := f.login(tokenAlice)
	startMonitoring(c, "77", 50)
	start := time.Now()
	c.send(map[string]any{"type": "placeBid", "auctionId": "77", "amount": 30, "requestId": "req_6"})
	m := c.expectType("bidResult")
	took := time.Since(start)
	if m["success"] != false || m["retryable"] != true || m["requestId"] != "req_6" {
		t.Errorf("bidResult %v", m)
	}
	if limit := 100*time.Millisecond + bidWaitMargin + time.Second; took > limit {
		t.Errorf("the bid was answered after %s, want at most %s", took, limit)
	}
}

func TestBidderPlugsIn(t *testing.T) {
	var success struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(sample(t, "ws_s2c_bidResult.success.json"), &success); err != nil {
		t.Fatal(err)
	}
	bidder := fakeBidder{got: make(chan Bid, 1), data: success.Data}
	f := newFixture(t, testConfig(), Options{Bidder: bidder})
	c := f.login(tokenAlice)
	startMonitoring(c, "77", 50)
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"s=1"}`, http.StatusOK)
	c.send(map[string]any{"type": "placeBid", "auctionId": "77", "amount": 30, "requestId": "req_5"})
	m := c.expectType("bidResult")
	checkShape(t, "ws_s2c_bidResult.success.json", m)
	if m["success"] != true || m["amount"] != 30.0 || m["requestId"] != "req_5" {
		t.Errorf("bidResult %v", m)
	}
	if bid := <-bidder.got; bid.ProductID != 77 || bid.Amount != 30 || bid.Cookies != "s=1" || bid.User != "alice" || bid.Unmonitored {
		t.Errorf("bidder got %+v", bid)
	}
	// Like the old backend: a lot the user does not monitor, by its
	// product id (leading zeros and all), over the socket and REST.
	c.send(map[string]any{"type": "placeBid", "auctionId": "078", "amount": 31, "requestId": "x"})
	if m := c.expectType("bidResult"); m["success"] != true || m["auctionId"] != "078" || m["amount"] != 31.0 {
		t.Errorf("bid on an unmonitored auction: %v", m)
	}
	if bid := <-bidder.got; bid.ProductID != 78 || bid.AuctionID != "078" || bid.Amount != 31 || bid.Cookies != "s=1" || !bid.Unmonitored {
		t.Errorf("bidder got %+v", bid)
	}
	apiCall(t, f, "POST", "/api/auctions/79/bid", tokenAlice, `{"amount":32}`, http.StatusOK)
	if bid := <-bidder.got; bid.ProductID != 79 || bid.Amount != 32 || bid.Cookies != "s=1" || !bid.Unmonitored {
		t.Errorf("bidder got %+v", bid)
	}
	// An id that is neither monitored nor a product id names nothing.
	c.send(map[string]any{"type": "placeBid", "auctionId": "lot-x", "amount": 30, "requestId": "y"})
	if m := c.expectType("bidResult"); m["success"] != false || m["errorType"] != "NOT_FOUND" ||
		m["error"] != "Auction lot-x not found: bid on an auction you do not monitor by its numeric Nellis product id" {
		t.Errorf("bid on an id that is not a product id: %v", m)
	}
	apiCall(t, f, "POST", "/api/auctions/lot-x/bid", tokenAlice, `{"amount":30}`, http.StatusNotFound)
	select {
	case bid := <-bidder.got:
		t.Errorf("bidder got %+v", bid)
	default:
	}
}
