package wsrelay

import (
	"encoding/json"
	"net/http"
	"testing"
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
	if a.User != "alice" || a.AuctionID != "100" || a.Config.MaxBid != 45 || a.Config.Strategy != "sniping" || a.Cookies != "" || a.OwnsUserState {
		t.Errorf("alice without cookies: %+v", a)
	}
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"sim_user=alice"}`, http.StatusOK)
	if a := f.relay.AutoBidders(100)[0]; a.Cookies != "sim_user=alice" || !a.OwnsUserState {
		t.Errorf("alice with cookies: %+v (snapshots use %q)", a, f.relay.CookiesFor(100))
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
	f.relay.PushAutoBidState("alice", "100", json.RawMessage(`{"status":"error","message":"cookies refused"}`))
	f.relay.PushAutoBidState("alice", "999", json.RawMessage(`{"status":"winning"}`)) // not hers: dropped
	f.relay.PushAutoBidState("alice", "100", json.RawMessage(`not json`))             // dropped
	m := alice.expectType("autoBidState")
	state, _ := m["state"].(map[string]any)
	if m["auctionId"] != "100" || state["status"] != "error" || m["requestId"] != nil {
		t.Errorf("message %v", m)
	}
	// Bob's socket got nothing: his next reply is to his own ping.
	bob.send(map[string]any{"type": "ping"})
	bob.expectType("pong")
	alice.send(map[string]any{"type": "ping"})
	alice.expectType("pong")
}
