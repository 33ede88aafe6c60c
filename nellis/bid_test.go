package nellis

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellissim"
)

const testCookies = "sid=s3cr3t-session-value; theme=dark"

// bidServer answers every bid with status and body, and hands the request
// it got to the test.
func bidServer(t *testing.T, status int, body string, header http.Header) (*Client, <-chan *http.Request) {
	t.Helper()
	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		got <- r
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(ClientConfig{APIEndpoint: srv.URL + "/base"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, got
}

func TestPlaceBidSendsWhatTheSiteSends(t *testing.T) {
	c, got := bidServer(t, http.StatusOK, string(readSample(t, "nellis_place_bid_response.success.mock.json")), nil)
	if _, err := c.PlaceBid(context.Background(), 58040119, 126, testCookies); err != nil {
		t.Fatal(err)
	}
	r := <-got
	body, _ := io.ReadAll(r.Body)
	want := map[string]string{
		"Content-Type": "text/plain;charset=UTF-8",
		"Cookie":       testCookies,
		"Accept":       "*/*",
		"User-Agent":   bidUserAgent,
		"Referer":      "http://" + r.Host + "/base/p/product/58040119",
		"Origin":       "http://" + r.Host,
	}
	if r.Method != http.MethodPost || r.URL.Path != "/base/api/bids" {
		t.Errorf("request %s %s, want POST /base/api/bids", r.Method, r.URL.Path)
	}
	for k, v := range want {
		if r.Header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, r.Header.Get(k), v)
		}
	}
	if string(body) != `{"productId":58040119,"bid":126}` {
		t.Errorf("body %s", body)
	}
}

func TestPlaceBidClassifiesAnswers(t *testing.T) {
	closeISO := "2025-06-28T12:00:00Z"
	want := time.Date(2025, 6, 28, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		status    int
		body      string
		outcome   BidOutcome
		retryable bool
		close     time.Time
	}{
		{"success sample", 200, string(readSample(t, "nellis_place_bid_response.success.mock.json")), BidAccepted, false, want},
		{"outbid sample", 200, string(readSample(t, "nellis_place_bid_response.outbid.mock.json")), BidOutbid, false, want},
		{"outbid without the final dot", 201, `{"success":true,"message":"Your bid was accepted, but another user has a higher maximum bid","data":{"currentAmount":35}}`, BidOutbid, false, time.Time{}},
		{"close time as ISO string", 200, `{"message":"Bid placed successfully","data":{"projectNewCloseTime":"` + closeISO + `"}}`, BidAccepted, false, want},
		{"close time as epoch ms", 200, `{"message":"ok","data":{"projectNewCloseTime":1751112000000}}`, BidAccepted, false, want},
		{"close time as epoch ms string", 200, `{"message":"ok","data":{"projectNewCloseTime":"1751112000000"}}`, BidAccepted, false, want},
		{"refusal with status 200", 200, `{"success":false,"message":"Your bid is too low"}`, BidTooLow, false, time.Time{}},
		{"unworded refusal with status 200", 200, `{"success":false}`, BidRejected, false, time.Time{}},
		{"too low", 400, `{"message":"Your bid is too low"}`, BidTooLow, false, time.Time{}},
		{"too low as error field", 400, `{"error":"Your bid is too low"}`, BidTooLow, false, time.Time{}},
		{"duplicate", 409, `{"message":"You have already placed a bid with the same price"}`, BidDuplicate, false, time.Time{}},
		{"duplicate worded on a 400", 400, `{"message":"You have already placed a bid with the same price"}`, BidDuplicate, false, time.Time{}},
		{"ended", 410, `{"message":"This auction has ended"}`, BidEnded, false, time.Time{}},
		{"auth", 401, `{"message":"Authentication required"}`, BidAuthRequired, false, time.Time{}},
		{"forbidden without a body", 403, ``, BidAuthRequired, false, time.Time{}},
		{"bare 409", 409, `conflict`, BidDuplicate, false, time.Time{}},
		{"bare 410", 410, ``, BidEnded, false, time.Time{}},
		{"unknown product", 404, `{"message":"Product not found"}`, BidRejected, false, time.Time{}},
		{"server error", 502, `<html>bad gateway</html>`, BidUpstreamError, true, time.Time{}},
		{"server error whose text looks like a refusal", 503, `{"message":"login service down"}`, BidUpstreamError, true, time.Time{}},
		{"rate limited", 429, ``, BidUpstreamError, true, time.Time{}},
		{"HTML page with status 200", 200, `<!DOCTYPE html><html><body>Sign in</body></html>`, BidUpstreamError, false, time.Time{}},
		{"empty 200", 200, ``, BidUpstreamError, false, time.Time{}},
		{"empty object", 200, `{}`, BidUpstreamError, false, time.Time{}},
		{"success flag alone", 200, `{"success":true}`, BidUpstreamError, false, time.Time{}},
		{"message without data", 200, `{"message":"Bid placed successfully"}`, BidUpstreamError, false, time.Time{}},
		{"data without a bid field", 200, `{"message":"ok","data":{"user":"x"}}`, BidUpstreamError, false, time.Time{}},
		{"data without a message", 200, `{"data":{"bidCount":3}}`, BidUpstreamError, false, time.Time{}},
		{"JSON array", 200, `[{"message":"ok","data":{"bidCount":3}}]`, BidUpstreamError, false, time.Time{}},
		{"redirect without a target", 302, ``, BidUpstreamError, false, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := bidServer(t, tc.status, tc.body, nil)
			res, err := c.PlaceBid(context.Background(), 58040119, 30, testCookies)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.outcome || res.Retryable != tc.retryable || res.Status != tc.status {
				t.Errorf("got %s retryable=%v status %d, want %s retryable=%v status %d (message %q)",
					res.Outcome, res.Retryable, res.Status, tc.outcome, tc.retryable, tc.status, res.Message)
			}
			if !res.Data.ProjectNewCloseTime.Equal(tc.close) {
				t.Errorf("projectNewCloseTime %v, want %v", res.Data.ProjectNewCloseTime, tc.close)
			}
			if res.Message == "" {
				t.Error("no message")
			}
		})
	}
}

// A bid POST answered with a redirect is never followed: an expired
// session sent to the login page, whose 200 (even one that looked like a
// success) must not make the bid accepted.
func TestPlaceBidNeverFollowsRedirects(t *testing.T) {
	success := string(readSample(t, "nellis_place_bid_response.success.mock.json"))
	cases := []struct {
		name     string
		status   int
		location string
		outcome  BidOutcome
	}{
		{"expired session", http.StatusFound, "/login?redirectTo=%2Fp%2Fx%2F1", BidAuthRequired},
		{"expired session, method kept", http.StatusTemporaryRedirect, "/auth/sign-in", BidAuthRequired},
		{"moved elsewhere", http.StatusMovedPermanently, "/elsewhere", BidUpstreamError},
		{"moved elsewhere, method kept", http.StatusPermanentRedirect, "/elsewhere", BidUpstreamError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var followed atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/bids" {
					w.Header().Set("Location", tc.location)
					w.WriteHeader(tc.status)
					return
				}
				followed.Add(1)
				_, _ = io.WriteString(w, success)
			}))
			defer srv.Close()
			c, err := NewClient(ClientConfig{APIEndpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			res, err := c.PlaceBid(context.Background(), 58040119, 30, testCookies)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.outcome || res.Status != tc.status || res.Retryable || res.Outcome.Placed() {
				t.Errorf("got %s status %d retryable=%v (%q), want %s status %d", res.Outcome, res.Status, res.Retryable, res.Message, tc.outcome, tc.status)
			}
			if n := followed.Load(); n != 0 {
				t.Errorf("the redirect was followed %d times", n)
			}
		})
	}
}

func TestPlaceBidReadsTheAcceptedBid(t *testing.T) {
	hdr := http.Header{"Date": {"Sat, 28 Jun 2025 11:59:30 GMT"}}
	c, _ := bidServer(t, http.StatusOK, string(readSample(t, "nellis_place_bid_response.outbid.mock.json")), hdr)
	res, err := c.PlaceBid(context.Background(), 58040119, 30, testCookies)
	if err != nil {
		t.Fatal(err)
	}
	want := BidData{BidCount: 7, CurrentAmount: 35, MinimumNextBid: 40, WinningBidUserID: 789012, BidderCount: 4,
		ProjectNewCloseTime: time.Date(2025, 6, 28, 12, 0, 0, 0, time.UTC), ProjectExtended: true}
	if res.Data != want {
		t.Errorf("data %+v, want %+v", res.Data, want)
	}
	if !res.ServerDate.Equal(time.Date(2025, 6, 28, 11, 59, 30, 0, time.UTC)) {
		t.Errorf("server date %v", res.ServerDate)
	}
	if res.SentAt.IsZero() || res.ReceivedAt.Before(res.SentAt) {
		t.Errorf("sent %v received %v", res.SentAt, res.ReceivedAt)
	}
	var body map[string]any
	if err := json.Unmarshal(res.Body, &body); err != nil || body["message"] == nil {
		t.Errorf("body %s: %v", res.Body, err)
	}
	if !res.Outcome.Placed() {
		t.Error("an outbid bid was placed")
	}
}

func TestPlaceBidNeverLeaksCookies(t *testing.T) {
	// A server that echoes the cookie into its refusal.
	echo := `{"message":"Authentication required for s3cr3t-session-value"}`
	c, _ := bidServer(t, http.StatusUnauthorized, echo, nil)
	res, err := c.PlaceBid(context.Background(), 1, 5, testCookies)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != BidAuthRequired {
		t.Errorf("outcome %s", res.Outcome)
	}
	if strings.Contains(res.Message, "s3cr3t") || strings.Contains(string(res.Body), "s3cr3t") {
		t.Errorf("cookie leaked: %q %s", res.Message, res.Body)
	}

	// A transport error that would quote the request.
	down, err := NewClient(ClientConfig{APIEndpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	res, err = down.PlaceBid(context.Background(), 1, 5, testCookies)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != BidUpstreamError || !res.Retryable || res.Status != 0 || strings.Contains(res.Message, "s3cr3t") {
		t.Errorf("unreachable site: %+v", res)
	}

	for _, bad := range []struct {
		id      int64
		amount  int
		cookies string
	}{{0, 5, testCookies}, {1, 0, testCookies}, {1, MaxBidAmount + 1, testCookies}, {1, 5, " "}, {1, 5, "a=b\r\nX-Evil: s3cr3t-session-value"}} {
		_, err := c.PlaceBid(context.Background(), bad.id, bad.amount, bad.cookies)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("PlaceBid(%d, %d): error %v", bad.id, bad.amount, err)
		}
	}
}

func TestPlaceBidCancelledIsNotRetryable(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c, _ := NewClient(ClientConfig{APIEndpoint: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := c.PlaceBid(ctx, 1, 5, testCookies)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != BidUpstreamError || res.Retryable {
		t.Errorf("cancelled bid: %+v", res)
	}
}

// The simulator is the closest thing to Nellis: its proxy bidding and
// refusals must come out classified.
func TestPlaceBidAgainstTheSimulator(t *testing.T) {
	sim := nellissim.New(nellissim.Config{Seed: 3, Auctions: 1})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := NewClient(ClientConfig{APIEndpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	lot := sim.Auctions()[0]
	ctx := context.Background()
	bid := func(user string, amount int) BidResult {
		t.Helper()
		res, err := c.PlaceBid(ctx, lot.ID, amount, "sim_user="+user)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := bid("rival", lot.NextBid+20); res.Outcome != BidAccepted {
		t.Fatalf("rival's proxy bid: %+v", res)
	}
	res := bid("alice", lot.NextBid+5)
	if res.Outcome != BidOutbid || res.Data.CurrentAmount != float64(lot.NextBid+6) || res.Data.MinimumNextBid != float64(lot.NextBid+7) {
		t.Errorf("outbid by proxy: %+v", res)
	}
	if res.Data.ProjectNewCloseTime.IsZero() || res.ServerDate.IsZero() {
		t.Errorf("no close time or date: %+v", res)
	}
	if res := bid("alice", lot.NextBid); res.Outcome != BidTooLow {
		t.Errorf("below the next bid: %+v", res)
	}
	if res, err := c.PlaceBid(ctx, lot.ID, lot.NextBid+50, "other=1"); err != nil || res.Outcome != BidAuthRequired {
		t.Errorf("no sim user: %+v %v", res, err)
	}
	if res := bid("alice", lot.NextBid+21); res.Outcome != BidAccepted {
		t.Errorf("above the rival's maximum: %+v", res)
	}
	if err := sim.CloseLot(lot.ID); err != nil {
		t.Fatal(err)
	}
	if res := bid("alice", lot.NextBid+100); res.Outcome != BidEnded {
		t.Errorf("closed lot: %+v", res)
	}
	if res, err := c.PlaceBid(ctx, lot.ID+1000, 5, "sim_user=alice"); err != nil || res.Outcome != BidRejected {
		t.Errorf("unknown lot: %+v %v", res, err)
	}
}
