package wsrelay

import (
	"testing"

	"github.com/nellis-edge/gateway/users"
)

// Another node of a cluster changed alice: auction 100 gone, 200 added,
// new cookies. Her socket is told of 200, the feeds follow 200 and no
// longer 100, the engine hears of both lots and forgets 100, and bob's
// socket gets nothing.
func TestApplyRecordFromAnotherNode(t *testing.T) {
	rec := &hookRecorder{}
	f := newFixture(t, testConfig(), Options{AutoBid: rec.hooks()})
	rec.watch(f.relay)
	alice, bob := f.login(tokenAlice), f.login(tokenBob)
	startMonitoring(alice, "100", 45)
	rec.mu.Lock()
	rec.calls = nil
	rec.mu.Unlock()

	f.relay.ApplyRecord("alice", func(local users.Record) users.Record {
		if len(local.Auctions) != 1 || local.Auctions[0].ID != "100" {
			t.Errorf("local record %+v: want auction 100", local.Auctions)
		}
		return users.Record{Cookies: "__session=other", Auctions: []users.Auction{
			{ID: "200", ProductID: 200, AddedAt: 5, Config: users.AuctionConfig{MaxBid: 9, AutoBid: true, Strategy: users.StrategyAuto}},
		}}
	})
	if m := alice.expectType("auctionState"); auctionOf(m)["id"] != "200" {
		t.Fatalf("pushed %v, want auction 200", m)
	}
	if f.feeds.subscribers(100) != 0 || f.feeds.subscribers(200) != 1 {
		t.Errorf("feeds followed: 100 by %d, 200 by %d", f.feeds.subscribers(100), f.feeds.subscribers(200))
	}
	if got := f.relay.dir.Cookies("alice").Cookies; got != "__session=other" {
		t.Errorf("cookies not taken")
	}
	rec.expect(t, "another node's change", "refresh 100 []", `refresh 200 [alice/200:9:0s:"__session=other"]`, "forget alice/100")
	// An unknown user, or the same record again, changes nothing.
	f.relay.ApplyRecord("nobody", func(users.Record) users.Record { return users.Record{} })
	f.relay.ApplyRecord("alice", func(local users.Record) users.Record { return local })
	rec.expect(t, "nothing changed")
	bob.send(map[string]any{"type": "ping"})
	bob.expectType("pong")
	alice.send(map[string]any{"type": "ping"})
	alice.expectType("pong")
}
