package wsrelay

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Many sockets under one user: the old backend's shared token, where
// every extension signs in as the same user.

// sharedTokenConfig lets one address open sockets sockets of one user.
func sharedTokenConfig(sockets int) Config {
	cfg := testConfig()
	cfg.ConnectionsPerMinute = 2 * sockets
	cfg.MaxSocketsPerUser = sockets
	cfg.MaxUnauthenticated = sockets
	cfg.MaxUnauthenticatedPerAddress = sockets
	return cfg
}

// monitoredOf is the relay's delivery state of a user's auction.
func monitoredOf(t *testing.T, r *Relay, name, auctionID string) *monitored {
	t.Helper()
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[name]
	if u == nil || u.auctions[auctionID] == nil {
		t.Fatalf("%s does not monitor %s", name, auctionID)
	}
	return u.auctions[auctionID]
}

// statesBefore reads c until the auctionState of change seq and returns
// the messages that came before it.
func statesBefore(c *client, seq float64) []map[string]any {
	c.t.Helper()
	var before []map[string]any
	for {
		m := c.read()
		if m["type"] == "auctionState" && auctionOf(m)["seq"] == seq {
			return before
		}
		before = append(before, m)
	}
}

// aliceMonitoring opens n sockets of alice (the shared token), the first
// starting to monitor auction 100 with maxBid, and reads the
// auctionState that push brings each of the others.
func aliceMonitoring(f *fixture, n int, maxBid float64) []*client {
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = f.login(tokenAlice)
	}
	startMonitoring(clients[0], "100", maxBid)
	for _, c := range clients[1:] {
		c.expectType("auctionState")
	}
	return clients
}

// expectNextChangeFirst publishes the lot's next change (seq 9) and fails
// unless it is the next thing each of clients gets; what names what
// anything before it would have come from.
func expectNextChangeFirst(t *testing.T, f *fixture, clients []*client, what string) {
	t.Helper()
	f.feeds.publish(newChange(t, product(100, 60), "e", 9))
	for i, c := range clients {
		if extra := statesBefore(c, 9); len(extra) > 0 {
			t.Fatalf("socket %d got %d frames %s, first %v", i, len(extra), what, extra[0])
		}
	}
}

// TestSharedTokenSignInsWriteNothingToOtherSockets: 200 more sockets of a
// user signing in and repeating startMonitoring for the auction the user
// monitors (what every extension does on connect) write not one frame to
// the sockets already open: the next thing each of those gets is the
// next change of the lot.
func TestSharedTokenSignInsWriteNothingToOtherSockets(t *testing.T) {
	const early, late = 10, 200
	f := newFixture(t, sharedTokenConfig(early+late), Options{})
	old := aliceMonitoring(f, early, 45)
	for range late {
		startMonitoring(f.login(tokenAlice), "100", 45) // the same auction, the same config
	}
	expectNextChangeFirst(t, f, old, "from the others' sign-ins")
}

// TestConfigBurstReachesEachSocketOnce: 50 quick config changes of one
// auction (REST, as a script or a second device sends them) made while
// the auction's push waits reach each of the user's 100 sockets as one
// auctionState, with the last config, and the requests never wait for
// the sockets.
func TestConfigBurstReachesEachSocketOnce(t *testing.T) {
	const sockets, updates = 100, 50
	f := newFixture(t, sharedTokenConfig(sockets), Options{})
	clients := aliceMonitoring(f, sockets, 1)

	// Holding the auction's sendMu keeps its push waiting, as a fan-out
	// in progress does, so the burst comes while it waits.
	a := monitoredOf(t, f.relay, "alice", "100")
	a.sendMu.Lock()
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 1; i <= updates; i++ {
		req, _ := http.NewRequest("PUT", f.srv.URL+"/api/auctions/100/config", strings.NewReader(`{"config":{"maxBid":`+strconv.Itoa(i)+`}}`))
		req.Header.Set("Authorization", tokenAlice)
		resp, err := client.Do(req)
		if err != nil {
			a.sendMu.Unlock()
			t.Fatalf("update %d waited for the sockets: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			a.sendMu.Unlock()
			t.Fatalf("update %d: %d", i, resp.StatusCode)
		}
	}
	a.sendMu.Unlock()

	for i, c := range clients {
		m := c.expectType("auctionState")
		if maxBid := auctionOf(m)["config"].(map[string]any)["maxBid"]; maxBid != float64(updates) {
			t.Fatalf("socket %d shows maxBid %v first, want one state with the last, %d", i, maxBid, updates)
		}
	}
	// Nothing follows: the next message is the lot's next change.
	expectNextChangeFirst(t, f, clients, "for the burst")
}

// TestUpdateConfigBurstEndsWithTheLastConfig: 50 updateConfig sent at
// once by one socket: that socket gets each answer and its states in
// order, the last config last; the user's 99 other sockets get the pushes coalesced, fewer frames than
// updates, in order, the last config last.
func TestUpdateConfigBurstEndsWithTheLastConfig(t *testing.T) {
	const sockets, updates = 100, 50
	cfg := sharedTokenConfig(sockets)
	cfg.MessageBurst = 2 * updates // the burst, after sign-in and startMonitoring
	f := newFixture(t, cfg, Options{})
	clients := aliceMonitoring(f, sockets, 1)
	for i := 1; i <= updates; i++ {
		clients[0].send(map[string]any{"type": "updateConfig", "auctionId": "100", "config": map[string]any{"maxBid": i}, "requestId": i})
	}
	// The asking socket gets each answer, then its state; a state of a
	// queued socket (TLS, the portable writes) may be replaced by a newer
	// one before it is written, so only the order and the last count.
	var mine []float64
	for answered := 0; answered < updates || len(mine) == 0 || mine[len(mine)-1] != updates; {
		switch m := clients[0].read(); m["type"] {
		case "response":
			answered++
		case "auctionState":
			mine = append(mine, auctionOf(m)["config"].(map[string]any)["maxBid"].(float64))
		}
	}
	if !slices.IsSorted(mine) {
		t.Fatalf("the asking socket's states went back: maxBid %v", mine)
	}
	for i, c := range clients[1:] {
		var got []float64 // the maxBid of each state, until the last config's
		for len(got) == 0 || got[len(got)-1] != updates {
			m := c.expectType("auctionState")
			got = append(got, auctionOf(m)["config"].(map[string]any)["maxBid"].(float64))
		}
		if !slices.IsSorted(got) || len(got) >= updates {
			t.Fatalf("socket %d got %d states for %d updates, maxBid %v: want fewer, in order", i+1, len(got), updates, got)
		}
		if i < 3 {
			t.Logf("socket %d: %d states", i+1, len(got))
		}
	}
	// Nothing follows: the next message of the others is the lot's next change.
	expectNextChangeFirst(t, f, clients[1:], "after the last config")
}

// TestAutoBidReportBurstReachesEachSocketOnce: 50 auto-bid reports of one
// auction arriving while its push waits reach each of the user's sockets
// as one autoBidState and one auctionState, both with the last state, and
// the engine never waits for the sockets.
func TestAutoBidReportBurstReachesEachSocketOnce(t *testing.T) {
	const sockets, reports = 20, 50
	f := newFixture(t, sharedTokenConfig(sockets), Options{})
	clients := aliceMonitoring(f, sockets, 1)
	a := monitoredOf(t, f.relay, "alice", "100")
	a.sendMu.Lock() // the push waits, as behind a fan-out in progress
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= reports; i++ {
			f.relay.ReportAutoBid(stateOf("alice", "100", `{"productId":100,"status":"bidding","isWinning":false,"maxBidReached":false,"bids":`+bidsJSON(i)+`}`))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		a.sendMu.Unlock()
		t.Fatal("the reports waited for the sockets")
	}
	a.sendMu.Unlock()

	bids := func(state any) int { return len(state.(map[string]any)["bids"].([]any)) }
	for i, c := range clients {
		if m := c.expectType("autoBidState"); bids(m["state"]) != reports {
			t.Fatalf("socket %d: autoBidState with %d bids first, want the last state's %d", i, bids(m["state"]), reports)
		}
		if m := c.expectType("auctionState"); bids(auctionOf(m)["autoBid"]) != reports {
			t.Fatalf("socket %d: auctionState with %d bids, want %d", i, bids(auctionOf(m)["autoBid"]), reports)
		}
	}
	expectNextChangeFirst(t, f, clients, "for the reports")
}
