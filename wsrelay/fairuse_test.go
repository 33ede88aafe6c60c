package wsrelay

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func subscribe(c *client, productID int64) {
	c.t.Helper()
	c.send(map[string]any{"type": "subscribe", "auctionId": fmt.Sprint(productID), "requestId": fmt.Sprint("s", productID)})
	if m := c.expectType("auctionUpdate"); m["requestId"] != fmt.Sprint("s", productID) {
		c.t.Fatalf("subscribe %d: %v", productID, m)
	}
}

// The products a user watches count across all their sockets, monitored
// and subscribed together: more sockets buy no more upstream work.
func TestProductLimitCountsEveryUserSocket(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAuctions = 3
	clock := &frozenClock{now: time.Unix(1_800_000_000, 0)}
	f := newFixture(t, cfg, Options{Now: clock.Now})
	a1, a2 := f.login(tokenAlice), f.login(tokenAlice)
	startMonitoring(a1, "1", 5)
	a2.expectType("auctionState") // every socket of the user sees the new auction
	subscribe(a1, 2)
	subscribe(a2, 3)
	const refusal = "Product limit reached: at most 3 different products per user, monitored and subscribed on all connections together, counting those left in the last 30s; stop monitoring or unsubscribe from another first"

	a2.send(map[string]any{"type": "subscribe", "auctionId": "4", "requestId": "s4"})
	a2.expectError(refusal, "s4")
	a1.send(map[string]any{"type": "startMonitoring", "auctionId": "5", "requestId": "m5"})
	a1.expectError(refusal, "m5")
	if f.feeds.subscribeCalls(4) != 0 || f.feeds.subscribeCalls(5) != 0 {
		t.Error("a refused product was subscribed upstream")
	}

	// What the user already watches costs nothing more, on any socket.
	subscribe(a2, 1)
	subscribe(a1, 3)
	startMonitoring(a2, "2", 7)
	a1.expectType("auctionState")

	// Another user has their own allowance.
	subscribe(f.login(tokenBob), 4)

	// A product left makes room for another once its feed would have
	// closed upstream, not before: churn cannot hold more feeds open.
	a2.send(map[string]any{"type": "unsubscribe", "auctionId": "3", "requestId": "u3"})
	a2.expectType("response")
	a1.send(map[string]any{"type": "unsubscribe", "auctionId": "3", "requestId": "u3"})
	a1.expectType("response")
	a2.send(map[string]any{"type": "subscribe", "auctionId": "5", "requestId": "s5"})
	a2.expectError(refusal, "s5")
	subscribe(a2, 3) // coming back to it is free
	a2.send(map[string]any{"type": "unsubscribe", "auctionId": "3", "requestId": "u3"})
	a2.expectType("response")
	clock.Advance(30 * time.Second)
	subscribe(a2, 5)

	// A socket that closes leaves its products the same way.
	a2.ws.Close()
	waitFor(t, "alice's second socket to go", func() bool { return f.relay.Stats().Authenticated == 2 })
	a1.send(map[string]any{"type": "unsubscribe", "auctionId": "2", "requestId": "u2"})
	a1.expectType("response")
	a1.send(map[string]any{"type": "stopMonitoring", "auctionId": "2", "requestId": "x2"})
	a1.expectType("response")
	a1.send(map[string]any{"type": "subscribe", "auctionId": "6", "requestId": "s6"})
	a1.expectError(refusal, "s6")
	clock.Advance(30 * time.Second)
	subscribe(a1, 6)
}

// Sockets signed in as one user are capped; the one beyond the cap is
// refused with a reason and those already in keep working.
func TestSocketLimitPerUser(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSocketsPerUser = 2
	f := newFixture(t, cfg, Options{})
	a1, a2 := f.login(tokenAlice), f.login(tokenAlice)
	a2.authenticate(tokenAlice) // signing in again takes no second place

	extra := f.connect()
	extra.send(map[string]any{"type": "authenticate", "token": tokenAlice, "requestId": "auth"})
	m := extra.expectType("authenticated")
	if m["success"] != false || m["error"] != "Connection limit reached: at most 2 signed-in connections per user; close another tab or browser first" || m["requestId"] != "auth" {
		t.Fatalf("authenticate over the limit: %v", m)
	}
	extra.send(map[string]any{"type": "subscribe", "auctionId": "1", "requestId": "s"})
	extra.expectError("Not authenticated", "s")
	a1.roundTrip()
	startMonitoring(a2, "1", 5)
	a1.expectType("auctionState")
	f.login(tokenBob) // another user is not affected

	a1.ws.Close()
	waitFor(t, "alice's first socket to go", func() bool { return f.relay.Stats().Authenticated == 2 })
	extra.authenticate(tokenAlice)
}

// A product only subscribe sockets want is not monitored, so the hub polls
// it in the background; the moment a user monitors it the hub is told.
func TestMonitoringASubscribedProductPrioritizesIt(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	a := f.login(tokenAlice)
	subscribe(a, 7)
	if f.relay.Monitored(7) {
		t.Error("a subscribed product counts as monitored")
	}
	startMonitoring(a, "7", 5)
	if !f.relay.Monitored(7) {
		t.Error("a monitored product does not count as monitored")
	}
	if got := f.feeds.prioritizedProducts(); !slices.Equal(got, []int64{7}) {
		t.Errorf("prioritized %v, want [7]", got)
	}
}
