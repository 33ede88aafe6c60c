package wsrelay

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/nellissim"
	"github.com/nellis-edge/gateway/settings"
)

// simulatedFixture is a relay fed by a real hub following a simulator of
// one lot (seeded with seed), whose snapshots take the relay's cookies.
func simulatedFixture(t *testing.T, seed int64) (*fixture, *nellissim.Simulator) {
	t.Helper()
	sim := nellissim.New(nellissim.Config{Seed: seed, Auctions: 1})
	sim.Start()
	t.Cleanup(sim.Close)
	var relay atomic.Pointer[Relay]
	f := newFixture(t, testConfig(), Options{Feeds: simulatedFeeds(t, sim, &relay)})
	relay.Store(f.relay)
	return f, sim
}

// simulatedFeeds is the real hub polling the simulator, which answers
// userState per the request's sim_user cookie, with the cookies r picks.
func simulatedFeeds(t *testing.T, sim *nellissim.Simulator, relay *atomic.Pointer[Relay]) *hub.Hub {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	client, err := nellis.NewClient(nellis.ClientConfig{APIEndpoint: srv.URL, Format: nellis.FormatJSON, HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Poll: fallback.ScheduleConfig{Fallback: settings.Duration(50 * time.Millisecond), FallbackClosing: settings.Duration(50 * time.Millisecond)}},
		hub.Deps{
			Snapshots: client,
			Cookies: func(id int64) (string, string) {
				if r := relay.Load(); r != nil {
					return r.CookiesFor(id)
				}
				return "", ""
			},
			CookiesFailed: func(id int64, owner string) {
				if r := relay.Load(); r != nil {
					r.CookiesFailed(id, owner)
				}
			},
		})
	t.Cleanup(h.Close)
	return h
}

// readUntil reads c's messages, passing each to check, until done says
// the one it waited for came.
func readUntil(c *client, what string, check func(m map[string]any), done func(m map[string]any) bool) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m := c.read()
		check(m)
		if done(m) {
			return
		}
	}
	c.t.Fatalf("timed out waiting for %s", what)
}

// watch sends startMonitoring and waits for its answer. A change of the
// real hub's may come before it: check sees every message.
func watch(c *client, id string, check func(m map[string]any)) {
	c.t.Helper()
	c.send(map[string]any{"type": "startMonitoring", "auctionId": id, "requestId": "start-" + id,
		"config":   map[string]any{"maxBid": 1000, "strategy": "sniping", "incrementAmount": 1, "autoBid": true},
		"metadata": map[string]any{"title": "lot " + id, "url": "https://www.nellisauction.com/p/x/" + id}})
	readUntil(c, "the startMonitoring answer", check, func(m map[string]any) bool {
		if m["type"] == "response" && m["success"] != true {
			c.t.Fatalf("startMonitoring %s: %v", id, m)
		}
		return m["type"] == "response"
	})
}

// stateData is the data of an auctionState or auctionUpdate, nil for
// another message.
func stateData(m map[string]any) map[string]any {
	switch m["type"] {
	case "auctionState":
		data, _ := auctionOf(m)["data"].(map[string]any)
		return data
	case "auctionUpdate":
		data, _ := m["data"].(map[string]any)
		return data
	}
	return nil
}

// TestUserStateReachesOnlyItsUser is issue 11's two-user test: alice
// (cookies, winning) and bob (none) watch one lot, and one of bob's
// sockets subscribed to it too. The snapshots are fetched with alice's
// cookies, yet bob's sockets never see her userState (isWinning,
// isWatching, her next bid): they get the public values. Alice sees
// hers, with every change.
func TestUserStateReachesOnlyItsUser(t *testing.T) {
	f, sim := simulatedFixture(t, 5)
	lot := sim.Auctions()[0]
	id := strconv.FormatInt(lot.ID, 10)
	if err := sim.EmitBid(lot.ID, lot.NextBid, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := sim.EmitBid(lot.ID, lot.NextBid+100, "alice"); err != nil { // her maximum
		t.Fatal(err)
	}
	price := func() float64 { return float64(sim.Auctions()[0].CurrentBid) }

	alice := f.login(tokenAlice)
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"sim_user=alice"}`, http.StatusOK)
	watch(alice, id, func(map[string]any) {})
	readUntil(alice, "alice's own state", func(map[string]any) {}, func(m map[string]any) bool {
		d := stateData(m)
		return d != nil && d["isWinning"] == true && d["currentBid"] == price()
	})

	bob, bobSub := f.login(tokenBob), f.login(tokenBob)
	neverAlices := func(who string) func(map[string]any) {
		return func(m map[string]any) {
			d := stateData(m)
			if d == nil {
				return
			}
			if d["isWinning"] != false || d["isWatching"] != false {
				t.Fatalf("%s got alice's user state: %s %v", who, m["type"], d)
			}
			want := d["currentBid"].(float64) + 1
			if d["nextBid"] != want || d["minimumBid"] != want {
				t.Fatalf("%s got next bid %v, minimum %v; want the public %v", who, d["nextBid"], d["minimumBid"], want)
			}
			if m["type"] == "auctionState" && auctionOf(m)["nextBid"] != want {
				t.Fatalf("%s got panel next bid %v, want the public %v", who, auctionOf(m)["nextBid"], want)
			}
		}
	}
	watch(bob, id, neverAlices("bob"))
	readUntil(bob, "bob's first state", neverAlices("bob"), func(m map[string]any) bool { return m["type"] == "auctionState" })
	bobSub.send(map[string]any{"type": "subscribe", "auctionId": id, "requestId": "sub"})
	readUntil(bobSub, "the subscribe answer", neverAlices("bob's subscribe socket"), func(m map[string]any) bool { return m["type"] == "auctionUpdate" })

	// A rival bids below her maximum: every watcher hears the new price
	// from a snapshot fetched with her cookies; only she hears she leads.
	for range 2 {
		if err := sim.EmitBid(lot.ID, sim.Auctions()[0].NextBid, "rival"); err != nil {
			t.Fatal(err)
		}
		want := price()
		reached := func(m map[string]any) bool { d := stateData(m); return d != nil && d["currentBid"] == want }
		readUntil(bob, fmt.Sprintf("bob at $%v", want), neverAlices("bob"), reached)
		readUntil(bobSub, fmt.Sprintf("the subscribe socket at $%v", want), neverAlices("bob's subscribe socket"), reached)
		readUntil(alice, fmt.Sprintf("alice at $%v", want), func(m map[string]any) {
			if d := stateData(m); d != nil && d["currentBid"] == want && (d["isWinning"] != true || d["isWatching"] != true) {
				t.Fatalf("alice's state at $%v: %v", want, d)
			}
		}, reached)
	}
	// Her list says so too; bob's does not.
	list := func(token string) map[string]any {
		m := apiCall(t, f, "GET", "/api/auctions", token, "", http.StatusOK)
		return m["auctions"].([]any)[0].(map[string]any)["data"].(map[string]any)
	}
	if d := list(tokenAlice); d["isWinning"] != true {
		t.Errorf("alice's list: %v", d)
	}
	if d := list(tokenBob); d["isWinning"] != false || d["isWatching"] != false {
		t.Errorf("bob's list shows alice's state: %v", d)
	}
}

// TestBadCookiesFallBackToAnonymousSnapshots: alice's synced cookies are
// refused (as expired cookies would be); the lot stays fresh for bob from
// anonymous snapshots, and her cookies are not used again until she syncs
// new ones.
func TestBadCookiesFallBackToAnonymousSnapshots(t *testing.T) {
	f, sim := simulatedFixture(t, 6)
	lot := sim.Auctions()[0]
	id := strconv.FormatInt(lot.ID, 10)

	// Cookies from before /api/auth checked them (a saved record, say).
	f.relay.mu.Lock()
	f.relay.setCookies(f.relay.users["alice"], "sim_user=alice\x01")
	f.relay.mu.Unlock()
	alice, bob := f.login(tokenAlice), f.login(tokenBob)
	watch(alice, id, func(map[string]any) {})
	watch(bob, id, func(map[string]any) {})

	if err := sim.EmitBid(lot.ID, lot.NextBid+3, "rival"); err != nil {
		t.Fatal(err)
	}
	want := float64(sim.Auctions()[0].CurrentBid)
	readUntil(bob, "the rival's bid", func(map[string]any) {}, func(m map[string]any) bool {
		d := stateData(m)
		return d != nil && d["currentBid"] == want
	})
	if owner, cookies := f.relay.CookiesFor(lot.ID); owner != "" || cookies != "" {
		t.Error("the refused cookies are still given for snapshots")
	}
	// A new sync brings them back.
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"sim_user=alice"}`, http.StatusOK)
	if _, cookies := f.relay.CookiesFor(lot.ID); cookies != "sim_user=alice" {
		t.Errorf("after a new sync: %q", cookies)
	}
}

// TestEachUserSeesTheirOwnState: alice and bob both synced cookies and
// bid; alice leads. The snapshots take turns with their cookies, so each
// sees their own standing (bob: watching, not winning) and never the
// other's.
func TestEachUserSeesTheirOwnState(t *testing.T) {
	f, sim := simulatedFixture(t, 8)
	lot := sim.Auctions()[0]
	id := strconv.FormatInt(lot.ID, 10)
	for _, b := range []struct {
		amount int
		who    string
	}{{lot.NextBid, "alice"}, {lot.NextBid + 100, "alice"}, {lot.NextBid + 1, "bob"}} {
		if err := sim.EmitBid(lot.ID, b.amount, b.who); err != nil {
			t.Fatal(err)
		}
	}
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"sim_user=alice"}`, http.StatusOK)
	apiCall(t, f, "POST", "/api/auth", tokenBob, `{"cookies":"sim_user=bob"}`, http.StatusOK)
	alice, bob := f.login(tokenAlice), f.login(tokenBob)
	watch(alice, id, func(map[string]any) {})
	watch(bob, id, func(map[string]any) {})

	readUntil(bob, "bob's own state", func(m map[string]any) {
		if d := stateData(m); d != nil && d["isWinning"] != false {
			t.Fatalf("bob got alice's standing: %v", d)
		}
	}, func(m map[string]any) bool {
		d := stateData(m)
		return d != nil && d["isWatching"] == true
	})
	readUntil(alice, "alice's own state", func(map[string]any) {}, func(m map[string]any) bool {
		d := stateData(m)
		return d != nil && d["isWinning"] == true && d["isWatching"] == true
	})
}
