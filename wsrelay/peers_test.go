package wsrelay

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nellis-edge/gateway/clusterusers"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/internal/natstest"
	"github.com/nellis-edge/gateway/users"
)

// peerNode is one gateway's relay joined to the others by user news over
// NATS, as the module joins them in cluster mode.
type peerNode struct {
	*fixture
	nc   *nats.Conn
	news *clusterusers.UserNews

	mu       sync.Mutex
	answered map[string]int // the other nodes' asks for a user's news, answered
}

// answeredFor reports whether the node has answered another node's ask
// for name's news (clusterusers' usersync).
func (n *peerNode) answeredFor(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.answered[name] > 0
}

func newPeerNode(t *testing.T, url, node string, owns bool) *peerNode {
	t.Helper()
	key := bytes.Repeat([]byte{7}, 32)
	f := newFixture(t, testConfig(), Options{})
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	n := &peerNode{fixture: f, nc: nc, answered: make(map[string]int)}
	news, err := clusterusers.NewUserNews(nc, clusterusers.NewsOptions{
		Prefix: "nellis", Node: node, Key: func() []byte { return key },
		Owns:    func(int64) bool { return owns },
		Present: f.relay.HasSockets, AutoBid: f.relay.ApplyPeerAutoBid, UserState: f.relay.ApplyPeerUserState,
		Current: func(name string) ([]users.AutoBidState, []users.LotUserState) {
			defer func() {
				n.mu.Lock()
				n.answered[name]++
				n.mu.Unlock()
			}()
			return f.relay.PeerNews(name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.relay.SetPeers(news)
	t.Cleanup(func() { // after the fixture's own cleanup, which runs later
		f.relay.SetPeers(nil)
		news.Close()
		nc.Close()
	})
	n.news = news
	return n
}

// TestOwnersUserNewsReachesTheUserOnAnotherNode: node a owns lot 100,
// where alice's auction lives with her cookies but no socket of hers;
// alice and bob watch the lot on node b. What a's engine reports for
// alice (outbid) and what a snapshot fetched with her cookies says
// (winning, her next bid) reach alice's socket on b within 250 ms; bob,
// on the same lot on b, gets neither, and b follows alice's news only
// while she has a socket there.
func TestOwnersUserNewsReachesTheUserOnAnotherNode(t *testing.T) {
	srv := natstest.Start(t)
	a := newPeerNode(t, srv.URL(), "a", true)
	b := newPeerNode(t, srv.URL(), "b", false)
	for _, n := range []*peerNode{a, b} {
		n.feeds.publish(newChange(t, product(100, 40), "e1", 1))
	}

	// alice's auction and cookies on a, where she then has no socket.
	onA := a.login(tokenAlice)
	startMonitoring(onA, "100", 45)
	apiCall(t, a.fixture, "POST", "/api/auth", tokenAlice, `{"cookies":"sim_user=alice"}`, http.StatusOK)
	_ = onA.ws.Close()
	waitFor(t, "a to stop following alice", func() bool { return !a.relay.HasSockets("alice") && !a.news.Following("alice") })

	alice, bob := b.login(tokenAlice), b.login(tokenBob)
	startMonitoring(alice, "100", 45)
	startMonitoring(bob, "100", 45)
	if !b.news.Following("alice") || !b.news.Following("bob") {
		t.Fatal("b does not follow the news of the users with sockets there")
	}
	if err := b.nc.Flush(); err != nil { // b's interest reached the server
		t.Fatal(err)
	}
	// b asked the owners for alice's news when it began following her; a
	// answers with what it last said to her, so an answer after the
	// report below would bring alice that state twice.
	waitFor(t, "a to answer b's ask for alice's news", func() bool { return a.answeredFor("alice") })

	// a's engine reports alice's state.
	start := time.Now()
	a.relay.ReportAutoBid(stateOf("alice", "100", `{"productId":100,"status":"outbid","message":"Outbid at $46.","isWinning":false,"maxBidReached":false,"bids":[]}`))
	if m := alice.expectType("autoBidState"); m["auctionId"] != "100" || m["state"].(map[string]any)["status"] != "outbid" {
		t.Fatalf("alice on b: %v", m)
	}
	if ab := autoBidOf(t, auctionOf(alice.expectType("auctionState"))); ab["status"] != "outbid" {
		t.Fatalf("alice's auctionState on b: %v", ab)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("a's auto-bid state reached alice on b after %v, want within 250ms", d)
	} else {
		t.Logf("a's auto-bid state reached alice on b in %v", d)
	}

	// A snapshot fetched on a with alice's cookies says she leads.
	a.relay.mu.RLock()
	key := a.relay.users["alice"].stateKey
	a.relay.mu.RUnlock()
	c := newChange(t, product(100, 50), "e1", 2)
	c.User = &hub.UserState{Owner: key, IsWinning: true, IsWatching: true, NextBid: 55}
	start = time.Now()
	a.feeds.publish(c)
	m := alice.expectType("auctionState")
	if d := stateData(m); d["isWinning"] != true || d["isWatching"] != true || d["minimumBid"] != float64(55) {
		t.Fatalf("alice's state on b after a's snapshot: %v", d)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("alice's user state reached her on b after %v, want within 250ms", d)
	} else {
		t.Logf("alice's user state reached her on b in %v", d)
	}

	// bob got neither: his next message answers his own ping.
	bob.send(map[string]any{"type": "ping"})
	bob.expectType("pong")

	// alice's last socket on b closes: b stops following her.
	_ = alice.ws.Close()
	waitFor(t, "b to stop following alice", func() bool { return !b.news.Following("alice") })
	if !b.news.Following("bob") {
		t.Error("b stopped following bob, whose socket is open")
	}

	// Her first socket on node c, which has her auction (from the users'
	// bucket) but never heard from a: a sends what it last said to her
	// at once, not at its next change.
	c3 := newPeerNode(t, srv.URL(), "c", false)
	c3.feeds.publish(newChange(t, product(100, 50), "e1", 2))
	c3.relay.ApplyRecord("alice", func(local users.Record) users.Record {
		local.Auctions = append(local.Auctions, users.Auction{ID: "100", ProductID: 100, AddedAt: 1, Config: users.DefaultAuctionConfig})
		return local
	})
	start = time.Now()
	onC := c3.login(tokenAlice)
	gotAutoBid, gotState := false, false
	readUntil(onC, "a's news on c", func(map[string]any) {}, func(m map[string]any) bool {
		switch m["type"] {
		case "autoBidState":
			gotAutoBid = gotAutoBid || m["state"].(map[string]any)["status"] == "outbid"
		case "auctionState":
			gotState = gotState || stateData(m)["isWinning"] == true
		}
		return gotAutoBid && gotState
	})
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("a's news reached alice's new socket on c after %v, want within 250ms", d)
	} else {
		t.Logf("a's news reached alice's new socket on c in %v (sign-in included)", d)
	}
}
