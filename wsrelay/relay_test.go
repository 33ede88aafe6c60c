package wsrelay

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func startMonitoring(c *client, auctionID string, maxBid float64) {
	c.t.Helper()
	c.send(map[string]any{"type": "startMonitoring", "auctionId": auctionID, "requestId": "start-" + auctionID,
		"config":   map[string]any{"maxBid": maxBid, "strategy": "sniping", "incrementAmount": 1, "autoBid": true},
		"metadata": map[string]any{"title": "lot " + auctionID, "url": "https://www.nellisauction.com/p/x/" + auctionID}})
	if m := c.expectType("response"); m["success"] != true {
		c.t.Fatalf("startMonitoring %s: %v", auctionID, m)
	}
	c.expectType("auctionState")
}

func auctionOf(m map[string]any) map[string]any { return m["auction"].(map[string]any) }

func TestUsersNeverSeeEachOthersAuctions(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	alice, alice2, bob := f.login(tokenAlice), f.login(tokenAlice), f.login(tokenBob)
	stranger := f.connect()

	startMonitoring(alice, "100", 45)
	alice2.expectType("auctionState") // every socket of the user hears of it
	startMonitoring(alice, "200", 10)
	alice2.expectType("auctionState")
	startMonitoring(bob, "100", 99)

	f.feeds.publish(newChange(t, product(200, 5), "e", 1))
	f.feeds.publish(newChange(t, product(100, 7), "e", 1))
	for _, c := range []*client{alice, alice2} {
		if a := auctionOf(c.expectType("auctionState")); a["id"] != "200" {
			t.Fatalf("alice got %v first", a)
		}
		if a := auctionOf(c.expectType("auctionState")); a["id"] != "100" || a["config"].(map[string]any)["maxBid"] != 45.0 {
			t.Fatalf("alice got %v", a)
		}
	}
	if a := auctionOf(bob.expectType("auctionState")); a["id"] != "100" || a["config"].(map[string]any)["maxBid"] != 99.0 {
		t.Fatalf("bob got %v", a)
	}
	bob.roundTrip()      // nothing of alice's 200 reached bob
	stranger.roundTrip() // nor anything an unauthenticated socket

	// One upstream subscription serves both users.
	if n := f.feeds.subscribeCalls(100); n != 1 {
		t.Errorf("product 100 subscribed %d times, want 1", n)
	}
	// Lists and ids are per user.
	bob.send(map[string]any{"type": "getMonitoredAuctions", "requestId": 1})
	if list := bob.expectType("response")["data"].(map[string]any)["auctions"].([]any); len(list) != 1 {
		t.Errorf("bob lists %v", list)
	}
	bob.send(map[string]any{"type": "updateConfig", "auctionId": "200", "config": map[string]any{"maxBid": 1}, "requestId": "r"})
	bob.expectError("Auction 200 not found", "r")
	stranger.send(map[string]any{"type": "getMonitoredAuctions", "requestId": "g"})
	if list := stranger.expectType("response")["data"].(map[string]any)["auctions"].([]any); len(list) != 0 {
		t.Errorf("unauthenticated socket lists %v", list)
	}

	// Interest ends when the last user stops.
	alice.send(map[string]any{"type": "stopMonitoring", "auctionId": "100", "requestId": "s"})
	alice.expectType("response")
	if f.feeds.subscribers(100) != 1 {
		t.Fatal("product 100 unsubscribed while bob still monitors it")
	}
	bob.send(map[string]any{"type": "stopMonitoring", "auctionId": "100", "requestId": "s"})
	bob.expectType("response")
	if n := f.feeds.subscribers(100); n != 0 {
		t.Errorf("product 100 still has %d subscriptions after everyone stopped", n)
	}
}

func TestSubscribeSharesTheFeedAndEndsWithTheSocket(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	a, b := f.login(tokenAlice), f.login(tokenBob)
	for _, c := range []*client{a, b} {
		c.send(map[string]any{"type": "subscribe", "auctionId": "300"})
		if m := c.expectType("auctionUpdate"); m["data"] != nil || m["auctionId"] != "300" {
			t.Fatalf("subscribe reply %v", m)
		}
	}
	f.feeds.publish(newChange(t, product(300, 12), "e", 1))
	for _, c := range []*client{a, b} {
		if m := c.expectType("auctionUpdate"); m["data"].(map[string]any)["currentBid"] != 12.0 {
			t.Fatalf("update %v", m)
		}
	}
	if n := f.feeds.subscribeCalls(300); n != 1 {
		t.Errorf("subscribed %d times", n)
	}
	a.send(map[string]any{"type": "unsubscribe", "auctionId": "300"})
	a.roundTrip()
	b.ws.Close()
	waitFor(t, "the feed released", func() bool { return f.feeds.subscribers(300) == 0 })
}

// waitFor polls a condition that has no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBadInputGetsClearErrors(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageSize = 4096
	cfg.MaxAuctions = 1
	f := newFixture(t, cfg, Options{})
	bystander := f.login(tokenBob)
	c := f.connect()

	c.sendRaw(`{"type":`)
	c.expectError("Invalid message format", nil)
	c.sendRaw(`{"type":"startMonitoring","auctionId":"1","requestId":"req_2"}`)
	c.expectError("Not authenticated", "req_2")
	c.sendRaw(`{"type":"authenticate","token":"nope","requestId":"req_1"}`)
	if m := c.expectType("authenticated"); m["success"] != false || m["error"] != "Invalid authentication token" || m["requestId"] != "req_1" {
		t.Fatalf("bad token: %v", m)
	}
	c.sendRaw(`{"type":"authenticate","token":"` + tokenAlice + `","requestId":"req_1"}`)
	c.expectType("authenticated")
	c.expectType("monitoredAuctions")
	c.sendRaw(`{"type":"launch","requestId":"q"}`)
	c.expectError(`Unknown message type: "launch"`, "q")
	c.sendRaw(`{"type":"stopMonitoring","auctionId":"../x","requestId":"q"}`)
	c.expectError("auctionId must be 1-100 characters of A-Z, a-z, 0-9, _ or -", "q")
	c.sendRaw(`{"type":"startMonitoring","auctionId":"abc","requestId":"q"}`)
	c.expectError("Cannot tell the Nellis product of auction abc: use its numeric id or a /p/<slug>/<id> url", "q")
	startMonitoring(c, "1", 5)
	c.sendRaw(`{"type":"startMonitoring","auctionId":"2","requestId":"q"}`)
	c.expectError("Monitoring limit reached: at most 1 auctions per user; stop monitoring another auction first", "q")
	c.sendRaw(`{"type":"placeBid","auctionId":"1","amount":5,"requestId":"b"}`)
	if m := c.expectType("bidResult"); m["error"] != "bidding is disabled on this gateway" || m["errorType"] != "BIDDING_DISABLED" || m["requestId"] != "b" || m["retryable"] != false {
		t.Fatalf("bid: %v", m)
	}

	// An oversized frame closes that socket with 1009; others carry on.
	c.sendRaw(`{"type":"ping","pad":"` + strings.Repeat("x", 5000) + `"}`)
	if code := c.expectClose(); code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want 1009", code)
	}
	bystander.roundTrip()
	f.connect().roundTrip()
}

func TestFloodIsRefusedThenClosed(t *testing.T) {
	clock := &frozenClock{now: time.Unix(1_800_000_000, 0)}
	cfg := testConfig()
	cfg.MessagesPerSecond, cfg.MessageBurst = 1, 3
	f := newFixture(t, cfg, Options{Now: clock.Now})
	bystander := f.connect()
	c := f.connect()
	for range 3 {
		c.roundTrip()
	}
	c.send(map[string]any{"type": "ping", "requestId": "p"})
	c.expectError("Rate limit exceeded: slow down", "p")
	clock.Advance(time.Second) // one message more is allowed a second later
	c.roundTrip()
	for range 3 {
		c.send(map[string]any{"type": "ping"})
		c.expectError("Rate limit exceeded: slow down", nil)
	}
	c.send(map[string]any{"type": "ping"}) // a sustained flood
	if code := c.expectClose(); code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want 1008", code)
	}
	bystander.roundTrip()
}

func TestUpdateConfigKeepsConnections(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	alice, bob := f.login(tokenAlice), f.login(tokenBob)
	startMonitoring(alice, "5", 10)

	cfg := testConfig()
	cfg.Users = map[string]string{"alice": tokenAlice, "bob": "bob-new-token"}
	cfg.MaxMessageSize = 2048
	if err := f.relay.UpdateConfig(cfg); err != nil {
		t.Fatal(err)
	}
	// alice's socket is still open, still hers, and gets changes.
	f.feeds.publish(newChange(t, product(5, 11), "e", 1))
	if a := auctionOf(alice.expectType("auctionState")); a["currentBid"] != 11.0 {
		t.Fatalf("after reload: %v", a)
	}
	// bob's token changed: his socket stays open but must authenticate again.
	bob.send(map[string]any{"type": "getMonitoredAuctions", "requestId": "g"})
	bob.expectType("response")
	bob.send(map[string]any{"type": "stopMonitoring", "auctionId": "5", "requestId": "s"})
	bob.expectError("Not authenticated", "s")
	// The new limit applies to the open socket from its next message on.
	alice.roundTrip()
	alice.sendRaw(`{"type":"ping","pad":"` + strings.Repeat("x", 3000) + `"}`)
	if code := alice.expectClose(); code != websocket.CloseMessageTooBig {
		t.Fatalf("close %d, want 1009 under the reloaded limit", code)
	}
	if err := f.relay.UpdateConfig(Config{Users: map[string]string{"x": ""}}); err == nil {
		t.Error("invalid config accepted")
	}
}

func TestShutdownClosesWithGoingAway(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	a, b := f.login(tokenAlice), f.connect()
	f.relay.Shutdown()
	for _, c := range []*client{a, b} {
		if code := c.expectClose(); code != websocket.CloseGoingAway {
			t.Errorf("close code %d, want 1001", code)
		}
	}
	if s := dialStatus(t, f, nil); s != http.StatusServiceUnavailable {
		t.Errorf("dial after shutdown: %d", s)
	}
}

// TestSetHooksAppliesToOpenRelay: a reload brings new metrics callbacks.
func TestSetHooksAppliesToOpenRelay(t *testing.T) {
	old := make(chan struct{}, 4)
	f := newFixture(t, testConfig(), Options{Hooks: Hooks{ConnOpened: func() { old <- struct{}{} }}})
	f.connect()
	opened := make(chan struct{}, 4)
	f.relay.SetHooks(Hooks{ConnOpened: func() { opened <- struct{}{} }})
	f.connect()
	if len(old) != 1 || len(opened) != 1 {
		t.Errorf("old hook saw %d, new hook %d; want 1 each", len(old), len(opened))
	}
}

// TestRepeatedStartMonitoringAnswersOnlyItsSocket: an extension repeats
// startMonitoring for what it monitors on every reconnect. With nothing
// changed, only the asking socket gets the state; the user's other
// sockets (many, under a shared token) are not written to. A changed
// config still reaches every socket.
func TestRepeatedStartMonitoringAnswersOnlyItsSocket(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	alice, alice2 := f.login(tokenAlice), f.login(tokenAlice)
	startMonitoring(alice, "100", 45)
	alice2.expectType("auctionState")

	startMonitoring(alice2, "100", 45) // the same again, from the other socket
	alice.send(map[string]any{"type": "ping"})
	if m := alice.read(); m["type"] != "pong" {
		t.Fatalf("the other socket got %v after an unchanged startMonitoring, want only its pong", m)
	}

	startMonitoring(alice2, "100", 50) // a new maximum: both show it
	if m := alice.expectType("auctionState"); auctionOf(m)["config"].(map[string]any)["maxBid"] != float64(50) {
		t.Fatalf("the other socket's state after a changed config: %v", m)
	}
}
