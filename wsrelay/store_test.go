package wsrelay

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestRestartKeepsMonitoredAuctions(t *testing.T) {
	store := newMemStore()
	cfg := testConfig()
	cfg.CookieKey = strings.Repeat("ab", 32)
	f := newFixture(t, cfg, Options{Storage: store})
	alice := f.login(tokenAlice)
	startMonitoring(alice, "11", 20)
	startMonitoring(alice, "12", 30)
	alice.send(map[string]any{"type": "updateConfig", "auctionId": "12", "config": map[string]any{"maxBid": 35}, "requestId": "u"})
	alice.expectType("response")
	bob := f.login(tokenBob)
	startMonitoring(bob, "13", 40)
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"__session=secret-cookie"}`, http.StatusOK)
	f.close()

	raw := store.get(userKey("alice"))
	if raw == nil || bytes.Contains(raw, []byte("secret-cookie")) {
		t.Fatalf("stored record %s: missing, or cookies in clear", raw)
	}

	g := newFixture(t, cfg, Options{Storage: store})
	list := apiCall(t, g, "GET", "/api/auctions", tokenAlice, "", http.StatusOK)["auctions"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["id"] != "11" || list[1].(map[string]any)["config"].(map[string]any)["maxBid"] != 35.0 {
		t.Fatalf("alice after restart: %v", list)
	}
	if list := apiCall(t, g, "GET", "/api/auctions", tokenBob, "", http.StatusOK)["auctions"].([]any); len(list) != 1 {
		t.Fatalf("bob after restart: %v", list)
	}
	if s := apiCall(t, g, "GET", "/api/status", tokenAlice, "", http.StatusOK); s["cookiesSynced"] != true {
		t.Errorf("cookies lost across restart: %v", s)
	}
	// The restored auctions are watched upstream again.
	if g.feeds.subscribers(11) != 1 || g.feeds.subscribers(13) != 1 {
		t.Error("restored auctions are not subscribed")
	}
	a := g.login(tokenAlice)
	g.feeds.publish(newChange(t, product(12, 31), "e", 1))
	if m := auctionOf(a.expectType("auctionState")); m["id"] != "12" {
		t.Errorf("got %v", m)
	}
}

func TestCookiesWithoutKeyStayInMemory(t *testing.T) {
	store := newMemStore()
	f := newFixture(t, testConfig(), Options{Storage: store})
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"a=b"}`, http.StatusOK)
	f.close()
	if raw := store.get(userKey("alice")); bytes.Contains(raw, []byte("a=b")) || bytes.Contains(raw, []byte("sealedCookies")) {
		t.Fatalf("cookies persisted without a key: %s", raw)
	}
}

func TestCookieSealing(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	sealed, err := sealCookies(key, "alice", "a=b")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openCookies(key, "alice", sealed); err != nil || got != "a=b" {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := openCookies(key, "bob", sealed); err == nil {
		t.Error("a record moved to another user decrypts")
	}
	if _, err := openCookies(bytes.Repeat([]byte{8}, 32), "alice", sealed); err == nil {
		t.Error("a wrong key decrypts")
	}
}
