package wsrelay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/users"
)

func TestAutoBiddersListsAuctionsWithAutoBidOn(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	alice, bob := f.login(tokenAlice), f.login(tokenBob)
	startMonitoring(alice, "100", 45) // sniping, autoBid on
	startMonitoring(bob, "100", 30)
	bob.send(map[string]any{"type": "updateConfig", "auctionId": "100", "requestId": "u", "config": map[string]any{"autoBid": false}})
	bob.expectType("response")
	apiCall(t, f, "POST", "/api/auth", tokenBob, `{"cookies":"sim_user=bob"}`, http.StatusOK)

	got := f.relay.AutoBidders(100)
	if len(got) != 1 {
		t.Fatalf("auto-bidders %+v, want alice only", got)
	}
	a := got[0]
	if a.User != "alice" || a.AuctionID != "100" || a.Config.MaxBid != 45 || a.Config.Strategy != "sniping" || a.Cookies != "" || a.StateKey == "" {
		t.Errorf("alice without cookies: %+v", a)
	}
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"sim_user=alice"}`, http.StatusOK)
	if a := f.relay.AutoBidders(100)[0]; a.Cookies != "sim_user=alice" || a.StateKey == "" {
		t.Errorf("alice with cookies: %+v", a)
	} else if owner, _ := f.relay.CookiesFor(100); owner != a.StateKey {
		t.Errorf("snapshots tag their user state %q, alice's key is %q", owner, a.StateKey)
	}
	if got := f.relay.UserProducts("alice"); len(got) != 1 || got[0] != 100 {
		t.Errorf("alice's products %v", got)
	}
	if f.relay.AutoBidders(200) != nil || f.relay.UserProducts("nobody") != nil {
		t.Error("unknown product or user listed")
	}
}

func TestPushAutoBidStateReachesOnlyTheUser(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	alice, bob := f.login(tokenAlice), f.login(tokenBob)
	startMonitoring(alice, "100", 45)
	f.relay.ReportAutoBid(stateOf("alice", "100", `{"status":"error","message":"cookies refused"}`))
	f.relay.ReportAutoBid(stateOf("alice", "999", `{"status":"winning"}`))     // not hers: dropped
	f.relay.ReportAutoBid(users.AutoBidState{User: "alice", AuctionID: "100"}) // no status: dropped
	m := alice.expectType("autoBidState")
	state, _ := m["state"].(map[string]any)
	if m["auctionId"] != "100" || state["status"] != "error" || m["requestId"] != nil {
		t.Errorf("message %v", m)
	}
	// The extension reads only auctionState: the push is followed by one.
	if m := alice.expectType("auctionState"); m["requestId"] != nil || auctionOf(m)["status"] != "error" {
		t.Errorf("auctionState after the push %v", m)
	}
	// Bob's socket got nothing: his next reply is to his own ping.
	bob.send(map[string]any{"type": "ping"})
	bob.expectType("pong")
	alice.send(map[string]any{"type": "ping"})
	alice.expectType("pong")
}

// hookRecorder is an auto-bid engine as the relay sees it: it records each
// hook call and, like the engine, reads the relay back from Refresh, which
// would deadlock if the relay held its lock while calling.
type hookRecorder struct {
	mu    sync.Mutex
	relay *Relay // read back in Refresh once set
	calls []string
}

func (h *hookRecorder) hooks() AutoBidHooks {
	return AutoBidHooks{
		Refresh: func(productID int64) {
			h.mu.Lock()
			r := h.relay
			h.mu.Unlock()
			call := fmt.Sprintf("refresh %d", productID)
			if r != nil {
				var who []string
				for _, a := range r.AutoBidders(productID) {
					who = append(who, fmt.Sprintf("%s/%s:%g:%ds:%q", a.User, a.AuctionID, a.Config.MaxBid, a.Config.SnipeSeconds, a.Cookies))
				}
				call += " [" + strings.Join(who, " ") + "]"
			}
			h.add(call)
		},
		Forget: func(user, auctionID string) { h.add("forget " + user + "/" + auctionID) },
	}
}

func (h *hookRecorder) watch(r *Relay) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.relay = r
}

func (h *hookRecorder) add(call string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, call)
}

// expect checks the calls since the last expect. Every hook runs before
// the reply to the request that caused it, so no waiting is needed.
func (h *hookRecorder) expect(t *testing.T, what string, want ...string) {
	t.Helper()
	h.mu.Lock()
	got := h.calls
	h.calls = nil
	h.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("%s: hooks %q, want %q", what, got, want)
	}
}

func TestAutoBidHooksFireOnEveryChange(t *testing.T) {
	rec := &hookRecorder{}
	f := newFixture(t, testConfig(), Options{AutoBid: rec.hooks()})
	rec.watch(f.relay)
	alice := f.login(tokenAlice)

	startMonitoring(alice, "100", 45)
	rec.expect(t, "startMonitoring", `refresh 100 [alice/100:45:0s:""]`)

	alice.send(map[string]any{"type": "updateConfig", "auctionId": "100", "requestId": "u", "config": map[string]any{"maxBid": 50, "snipeSeconds": 5}})
	alice.expectType("response")
	alice.expectType("auctionState")
	rec.expect(t, "updateConfig", `refresh 100 [alice/100:50:5s:""]`)

	apiCall(t, f, "PUT", "/api/auctions/100/config", tokenAlice, `{"config":{"autoBid":false}}`, http.StatusOK)
	alice.expectType("auctionState")
	rec.expect(t, "REST config", `refresh 100 []`)
	apiCall(t, f, "PUT", "/api/auctions/100/config", tokenAlice, `{"config":{"autoBid":true}}`, http.StatusOK)
	alice.expectType("auctionState")
	rec.expect(t, "REST config", `refresh 100 [alice/100:50:5s:""]`)

	startMonitoring(alice, "200", 10)
	rec.expect(t, "second auction", `refresh 200 [alice/200:10:0s:""]`)
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"sim_user=alice"}`, http.StatusOK)
	rec.expect(t, "cookie sync", `refresh 100 [alice/100:50:5s:"sim_user=alice"]`, `refresh 200 [alice/200:10:0s:"sim_user=alice"]`)

	alice.send(map[string]any{"type": "stopMonitoring", "auctionId": "100", "requestId": "s"})
	alice.expectType("response")
	rec.expect(t, "stopMonitoring", `refresh 100 []`, `forget alice/100`)

	// Refused requests change nothing and tell the engine nothing.
	alice.send(map[string]any{"type": "stopMonitoring", "auctionId": "100", "requestId": "s2"})
	alice.expectType("response")
	alice.send(map[string]any{"type": "updateConfig", "auctionId": "100", "requestId": "u2", "config": map[string]any{"maxBid": 1}})
	alice.expectError("Auction 100 not found", "u2")
	apiCall(t, f, "PUT", "/api/auctions/200/config", tokenAlice, `{"config":{"snipeSeconds":0}}`, http.StatusBadRequest)
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":""}`, http.StatusBadRequest)
	rec.expect(t, "refused requests")
}

func TestAutoBidHooksFireWhenUsersLoad(t *testing.T) {
	store := memstorage.New()
	f := newFixture(t, testConfig(), Options{Storage: store})
	startMonitoring(f.login(tokenAlice), "12", 20)
	bob := f.login(tokenBob)
	startMonitoring(bob, "13", 30)
	startMonitoring(bob, "12", 30)
	f.close()

	// Saved auctions load in New: the engine hears of each product once.
	rec := &hookRecorder{}
	onlyAlice := Config{Users: map[string]string{"alice": tokenAlice}}
	g := newFixture(t, onlyAlice, Options{Storage: store, AutoBid: rec.hooks()})
	rec.expect(t, "New", "refresh 12")
	rec.watch(g.relay)

	// A reload adds bob: his auctions load and are looked at.
	if err := g.relay.UpdateConfig(testConfig()); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "bob added", `refresh 12 [alice/12:20:0s:"" bob/12:30:0s:""]`, `refresh 13 [bob/13:30:0s:""]`)

	// A reload removes bob: the engine forgets his auctions.
	if err := g.relay.UpdateConfig(onlyAlice); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "bob removed", `refresh 12 [alice/12:20:0s:""]`, `refresh 13 []`, "forget bob/12", "forget bob/13")
}

func TestSetAutoBidLooksAtEveryMonitoredProduct(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	startMonitoring(f.login(tokenAlice), "300", 20)
	startMonitoring(f.login(tokenBob), "100", 30)
	rec := &hookRecorder{}
	rec.watch(f.relay)
	f.relay.SetAutoBid(rec.hooks())
	rec.expect(t, "SetAutoBid", `refresh 100 [bob/100:30:0s:""]`, `refresh 300 [alice/300:20:0s:""]`)
	apiCall(t, f, "POST", "/api/auth", tokenBob, `{"cookies":"b=1"}`, http.StatusOK)
	rec.expect(t, "after SetAutoBid", `refresh 100 [bob/100:30:0s:"b=1"]`)
}

// fakeStates is an engine's State: per user and auction, a state.
type fakeStates struct {
	mu     sync.Mutex
	states map[string]users.AutoBidState // "user/auction" → state
}

func (s *fakeStates) set(user, auctionID, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.states == nil {
		s.states = make(map[string]users.AutoBidState)
	}
	s.states[user+"/"+auctionID] = stateOf(user, auctionID, state)
}

// stateOf is the engine's state of a user's auction that encodes as
// state, a JSON object.
func stateOf(user, auctionID, state string) users.AutoBidState {
	s := users.AutoBidState{User: user, AuctionID: auctionID}
	if err := json.Unmarshal([]byte(state), &s); err != nil {
		panic(fmt.Sprintf("state %s: %v", state, err))
	}
	return s
}

func (s *fakeStates) State(user, auctionID string) (users.AutoBidState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[user+"/"+auctionID]
	return st, ok
}

// bidsJSON is n bid records as the engine encodes them.
func bidsJSON(n int) string {
	recs := make([]string, n)
	for i := range recs {
		recs[i] = fmt.Sprintf(`{"at":"2026-11-27T08:00:%02dZ","amount":%d,"strategy":"auto","result":"success"}`, i%60, 10+i)
	}
	return "[" + strings.Join(recs, ",") + "]"
}

func autoBidOf(t *testing.T, auction map[string]any) map[string]any {
	t.Helper()
	ab, ok := auction["autoBid"].(map[string]any)
	if !ok {
		t.Fatalf("auction %v has no autoBid object", auction)
	}
	return ab
}

func TestAuctionsCarryTheAutoBidState(t *testing.T) {
	states := &fakeStates{}
	states.set("alice", "100", `{"productId":100,"status":"winning","message":"Winning at $109.","isWinning":true,"maxBidReached":false,"bids":`+bidsJSON(100)+`}`)
	f := newFixture(t, testConfig(), Options{AutoBid: AutoBidHooks{State: states.State}})
	alice, bob := f.login(tokenAlice), f.login(tokenBob)

	alice.send(map[string]any{"type": "startMonitoring", "auctionId": "100", "requestId": "s",
		"config": map[string]any{"maxBid": 150, "strategy": "auto", "autoBid": true}})
	alice.expectType("response")
	a := auctionOf(alice.expectType("auctionState"))
	ab := autoBidOf(t, a)
	if ab["status"] != "winning" || ab["isWinning"] != true || ab["maxBidReached"] != false || len(ab["bids"].([]any)) != 100 {
		t.Errorf("autoBid %v", ab)
	}
	if a["status"] != "monitoring" || a["error"] != nil {
		t.Errorf("a winning auction shows as %v", a)
	}
	startMonitoring(bob, "100", 20) // no state for bob
	if a := apiCall(t, f, "GET", "/api/auctions", tokenBob, "", http.StatusOK)["auctions"].([]any)[0].(map[string]any); a["autoBid"] != nil {
		t.Errorf("bob's list carries a state: %v", a)
	}

	// The listing (REST and WebSocket) and every change carry it, in the
	// predecessor's shape plus the new field.
	list := apiCall(t, f, "GET", "/api/auctions", tokenAlice, "", http.StatusOK)
	var want map[string]any
	_ = json.Unmarshal(sample(t, "http_get_api_auctions.response.json"), &want)
	if diffs := sameShape("$", want, list); len(diffs) > 0 {
		t.Errorf("differs from the sample: %v", diffs)
	}
	if ab := autoBidOf(t, list["auctions"].([]any)[0].(map[string]any)); ab["status"] != "winning" {
		t.Errorf("listed autoBid %v", ab)
	}
	alice.send(map[string]any{"type": "getMonitoredAuctions", "requestId": "g"})
	got := alice.expectType("response")["data"].(map[string]any)["auctions"].([]any)
	if ab := autoBidOf(t, got[0].(map[string]any)); ab["status"] != "winning" {
		t.Errorf("getMonitoredAuctions autoBid %v", ab)
	}
	f.feeds.publish(newChange(t, product(100, 120), "e", 1))
	if ab := autoBidOf(t, auctionOf(alice.expectType("auctionState"))); ab["status"] != "winning" {
		t.Errorf("autoBid after a change %v", ab)
	}
	if a := auctionOf(bob.expectType("auctionState")); a["autoBid"] != nil {
		t.Errorf("bob sees a state: %v", a)
	}

	// A pushed state replaces what the engine was asked: the relay shows
	// the latest report.
	f.relay.ReportAutoBid(stateOf("alice", "100", `{"productId":100,"status":"outbid","isWinning":false,"maxBidReached":false,"bids":[]}`))
	alice.expectType("autoBidState")
	if ab := autoBidOf(t, auctionOf(alice.expectType("auctionState"))); ab["status"] != "outbid" || ab["isWinning"] != false {
		t.Errorf("pushed autoBid %v", ab)
	}
	f.feeds.publish(newChange(t, product(100, 125), "e", 2))
	if ab := autoBidOf(t, auctionOf(alice.expectType("auctionState"))); ab["status"] != "outbid" {
		t.Errorf("autoBid after the push and a change %v", ab)
	}
}

func TestAutoBidErrorShowsAsAuctionError(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	alice := f.login(tokenAlice)
	startMonitoring(alice, "100", 45)
	f.feeds.publish(newChange(t, product(100, 20), "e", 1))
	alice.expectType("auctionState")

	const refused = "Nellis refused the synced cookies (authentication required): sign in again. Auto-bid is stopped."
	f.relay.ReportAutoBid(stateOf("alice", "100", `{"productId":100,"status":"error","message":"`+refused+`","isWinning":false,"maxBidReached":false,"bids":[]}`))
	alice.expectType("autoBidState")
	check := func(what string, a map[string]any) {
		t.Helper()
		if a["status"] != "error" || a["error"] != refused || a["message"] != refused || autoBidOf(t, a)["status"] != "error" {
			t.Errorf("%s: %v", what, a)
		}
	}
	check("pushed", auctionOf(alice.expectType("auctionState")))
	check("listed", apiCall(t, f, "GET", "/api/auctions", tokenAlice, "", http.StatusOK)["auctions"].([]any)[0].(map[string]any))
	f.feeds.publish(newChange(t, product(100, 21), "e", 2))
	check("next change", auctionOf(alice.expectType("auctionState")))

	// A closed lot shows as ended: nothing can be bid on it any more.
	closed := product(100, 21)
	closed.IsClosed, closed.MarketStatus = true, "closed"
	f.feeds.publish(newChange(t, closed, "e", 3))
	if a := auctionOf(alice.expectType("auctionState")); a["status"] != "ended" || a["error"] != nil || autoBidOf(t, a)["status"] != "error" {
		t.Errorf("closed lot %v", a)
	}

	// Once the engine recovers, the error goes.
	f.feeds.publish(newChange(t, product(100, 22), "e", 4))
	alice.expectType("auctionState")
	f.relay.ReportAutoBid(stateOf("alice", "100", `{"productId":100,"status":"bidding","isWinning":false,"maxBidReached":false,"bids":[]}`))
	alice.expectType("autoBidState")
	if a := auctionOf(alice.expectType("auctionState")); a["status"] != "monitoring" || a["error"] != nil || a["message"] != nil {
		t.Errorf("after recovery %v", a)
	}
}

func TestPushAutoBidStateRefusesWhatIsNotAState(t *testing.T) {
	if _, ok := newAutoBidView(users.AutoBidState{ProductID: 5, Message: "x"}); ok {
		t.Error("a state without a status accepted")
	}
	v, ok := newAutoBidView(stateOf("", "", ` {"status":"error"} `))
	if !ok || !v.failed() || !strings.Contains(string(v.failure), "auto-bidding stopped") {
		t.Errorf("an error without a message: %+v", v)
	}
}

func TestSnipeSecondsRoundTrips(t *testing.T) {
	store := memstorage.New()
	f := newFixture(t, testConfig(), Options{Storage: store})
	alice := f.login(tokenAlice)
	alice.send(map[string]any{"type": "startMonitoring", "auctionId": "100", "requestId": "s",
		"config": map[string]any{"maxBid": 40, "strategy": "sniping", "autoBid": true, "snipeSeconds": 15}})
	alice.expectType("response")
	if c := auctionOf(alice.expectType("auctionState"))["config"].(map[string]any); c["snipeSeconds"] != 15.0 {
		t.Errorf("startMonitoring config %v", c)
	}
	alice.send(map[string]any{"type": "updateConfig", "auctionId": "100", "requestId": "u", "config": map[string]any{"snipeSeconds": "30"}})
	alice.expectType("response")
	if c := auctionOf(alice.expectType("auctionState"))["config"].(map[string]any); c["snipeSeconds"] != 30.0 || c["maxBid"] != 40.0 {
		t.Errorf("updateConfig config %v", c)
	}
	alice.send(map[string]any{"type": "updateConfig", "auctionId": "100", "requestId": "bad", "config": map[string]any{"snipeSeconds": 2.5}})
	alice.expectError("config.snipeSeconds must be a whole number of seconds in [1, 300]", "bad")
	m := apiCall(t, f, "PUT", "/api/auctions/100/config", tokenAlice, `{"config":{"snipeSeconds":301}}`, http.StatusBadRequest)
	if m["error"] != "config.snipeSeconds must be a whole number of seconds in [1, 300]" {
		t.Errorf("REST refusal %v", m)
	}
	if c := apiCall(t, f, "PUT", "/api/auctions/100/config", tokenAlice, `{"config":{"snipeSeconds":45}}`, http.StatusOK)["config"].(map[string]any); c["snipeSeconds"] != 45.0 {
		t.Errorf("REST config %v", c)
	}
	alice.expectType("auctionState")
	if got := f.relay.AutoBidders(100); len(got) != 1 || got[0].Config.SnipeSeconds != 45 {
		t.Errorf("auto-bidders %+v", got)
	}
	// Without one the config does not mention it: the engine's default.
	startMonitoring(alice, "200", 10)
	if got := f.relay.AutoBidders(200); got[0].Config.SnipeSeconds != 0 {
		t.Errorf("default window %+v", got)
	}
	f.close()

	g := newFixture(t, testConfig(), Options{Storage: store})
	list := apiCall(t, g, "GET", "/api/auctions", tokenAlice, "", http.StatusOK)["auctions"].([]any)
	if c := list[0].(map[string]any)["config"].(map[string]any); c["snipeSeconds"] != 45.0 {
		t.Errorf("after restart %v", c)
	}
	if _, set := list[1].(map[string]any)["config"].(map[string]any)["snipeSeconds"]; set {
		t.Errorf("after restart, a default window is stored: %v", list[1])
	}
}

func TestStoredSnipeSecondsOutOfRangeFallsBack(t *testing.T) {
	store := memstorage.New()
	_ = store.Store(context.Background(), users.RecordKey("alice"),
		[]byte(`{"version":1,"auctions":[{"id":"7","productId":7,"config":{"maxBid":5,"strategy":"sniping","autoBid":true,"snipeSeconds":9999}}]}`))
	f := newFixture(t, testConfig(), Options{Storage: store})
	if got := f.relay.AutoBidders(7); len(got) != 1 || got[0].Config.SnipeSeconds != 0 {
		t.Errorf("auto-bidders %+v", got)
	}
}

// The extension reads the state exactly as the engine used to encode it
// before handing it over as JSON: the typed state encodes to the same
// bytes, in autoBid and in the autoBidState message.
func TestAutoBidStateKeepsItsWireBytes(t *testing.T) {
	wire := `{"productId":58040119,"status":"error","message":"Nellis said \u003cno\u003e \u0026 \"stop\"","isWinning":false,"maxBidReached":true,"bids":` + bidsJSON(3) + `}`
	v, ok := newAutoBidView(stateOf("alice", "100", wire))
	if !ok || string(v.field) != `,"autoBid":`+wire {
		t.Errorf("autoBid %s, want %s", v.field, wire)
	}
	if got := string(v.json()); got != wire {
		t.Errorf("state %s, want %s", got, wire)
	}
}
