package wsrelay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/users"
)

func TestRestartKeepsMonitoredAuctions(t *testing.T) {
	store := memstorage.New()
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

	raw := store.Get(users.RecordKey("alice"))
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
	store := memstorage.New()
	f := newFixture(t, testConfig(), Options{Storage: store})
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"a=b"}`, http.StatusOK)
	f.close()
	if raw := store.Get(users.RecordKey("alice")); bytes.Contains(raw, []byte("a=b")) || bytes.Contains(raw, []byte("sealedCookies")) {
		t.Fatalf("cookies persisted without a key: %s", raw)
	}
}

// A restart without the cookie_key, or with another one, must not destroy
// the cookies sealed under the right key: the saves in between write them
// back as they were, and the right key opens them again.
func TestSealedCookiesSurviveARestartWithoutTheirKey(t *testing.T) {
	key, other := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	for _, tc := range []struct{ name, between string }{{"no key", ""}, {"another key", other}} {
		t.Run(tc.name, func(t *testing.T) {
			store := memstorage.New()
			withKey := testConfig()
			withKey.CookieKey = key
			f := newFixture(t, withKey, Options{Storage: store})
			apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"__session=kept"}`, http.StatusOK)
			f.close()
			sealed := sealedOf(t, store.Get(users.RecordKey("alice")))

			between := testConfig()
			between.CookieKey = tc.between
			g := newFixture(t, between, Options{Storage: store})
			if s := apiCall(t, g, "GET", "/api/status", tokenAlice, "", http.StatusOK); s["cookiesSynced"] != false {
				t.Errorf("cookies opened without their key: %v", s)
			}
			startMonitoring(g.login(tokenAlice), "11", 20) // a save
			g.close()
			raw := store.Get(users.RecordKey("alice"))
			if !bytes.Contains(raw, []byte(`"11"`)) {
				t.Fatalf("the save in between did not happen: %s", raw)
			}
			if got := sealedOf(t, raw); got != sealed {
				t.Fatalf("sealed cookies rewritten by a save without their key: %q, was %q", got, sealed)
			}

			h := newFixture(t, withKey, Options{Storage: store})
			if s := apiCall(t, h, "GET", "/api/status", tokenAlice, "", http.StatusOK); s["cookiesSynced"] != true {
				t.Errorf("cookies lost across a restart without the key: %v", s)
			}
			if _, got := h.relay.CookiesFor(11); got != "__session=kept" {
				t.Errorf("cookies after the restart with the key: %q", got)
			}
		})
	}
}

// A reload that brings the right key opens the cookies an earlier config
// could not.
func TestReloadWithTheKeyOpensKeptCookies(t *testing.T) {
	store := memstorage.New()
	withKey := testConfig()
	withKey.CookieKey = strings.Repeat("ab", 32)
	f := newFixture(t, withKey, Options{Storage: store})
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"__session=kept"}`, http.StatusOK)
	f.close()

	g := newFixture(t, testConfig(), Options{Storage: store})
	if err := g.relay.UpdateConfig(withKey); err != nil {
		t.Fatal(err)
	}
	if s := apiCall(t, g, "GET", "/api/status", tokenAlice, "", http.StatusOK); s["cookiesSynced"] != true {
		t.Errorf("cookies not opened by the reload with the key: %v", s)
	}
}

func sealedOf(t *testing.T, raw []byte) string {
	t.Helper()
	var rec users.StoredRecord
	if err := json.Unmarshal(raw, &rec); err != nil || rec.SealedCookies == "" {
		t.Fatalf("record %s: no sealed cookies (%v)", raw, err)
	}
	return rec.SealedCookies
}

// One user's unreadable record is set aside and reported; that user starts
// empty and everyone else works.
func TestCorruptRecordIsQuarantined(t *testing.T) {
	store := memstorage.New()
	f := newFixture(t, testConfig(), Options{Storage: store})
	startMonitoring(f.login(tokenBob), "13", 40)
	f.close()
	truncated := []byte(`{"version":1,"auctions":[{"id":"11","produ`)
	_ = store.Store(context.Background(), users.RecordKey("alice"), truncated)

	var quarantined atomic.Int32
	var logs logBuffer
	g := newFixture(t, testConfig(), Options{Storage: store, Logger: logs.logger(),
		Hooks: Hooks{RecordQuarantined: func() { quarantined.Add(1) }}})
	if quarantined.Load() != 1 {
		t.Errorf("quarantine hook called %d times, want 1", quarantined.Load())
	}
	q := g.relay.Quarantined()
	if len(q) != 1 || q[0].User != "alice" || !strings.HasPrefix(q[0].Key, "nellis/quarantine/alice-") {
		t.Fatalf("quarantined: %+v", q)
	}
	if got := store.Get(q[0].Key); !bytes.Equal(got, truncated) {
		t.Errorf("quarantined copy %q, want the record as it was", got)
	}
	if !strings.Contains(logs.String(), `"user":"alice"`) || !strings.Contains(logs.String(), q[0].Key) {
		t.Errorf("not logged with the user and the copy: %s", logs.String())
	}
	if list := apiCall(t, g, "GET", "/api/auctions", tokenAlice, "", http.StatusOK)["auctions"].([]any); len(list) != 0 {
		t.Errorf("alice does not start empty: %v", list)
	}
	if list := apiCall(t, g, "GET", "/api/auctions", tokenBob, "", http.StatusOK)["auctions"].([]any); len(list) != 1 {
		t.Errorf("bob lost his auctions: %v", list)
	}
	// The empty record replaces the bad one, so the next start does not
	// set it aside again.
	waitFor(t, "alice's record rewritten", func() bool {
		var rec users.StoredRecord
		return json.Unmarshal(store.Get(users.RecordKey("alice")), &rec) == nil && rec.Version == users.RecordVersion
	})
	startMonitoring(g.login(tokenAlice), "12", 30)
	g.close()
	if raw := store.Get(users.RecordKey("alice")); !bytes.Contains(raw, []byte(`"12"`)) {
		t.Errorf("alice's new record not saved: %s", raw)
	}
}

// A storage that fails to load is not a corrupt record: nothing is set
// aside or overwritten, and the relay does not start.
func TestStorageFailureStillFailsTheLoad(t *testing.T) {
	_, err := New(context.Background(), testConfig(), Options{Feeds: newFakeFeeds(), Storage: failingStore{}})
	if err == nil {
		t.Fatal("a storage that cannot load was taken for an empty one")
	}
}

type failingStore struct{}

func (failingStore) Load(context.Context, string) ([]byte, error) {
	return nil, errors.New("disk on fire")
}
func (failingStore) Store(context.Context, string, []byte) error { return errors.New("disk on fire") }

// logBuffer collects JSON logs; String is safe while the relay logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *zap.Logger {
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(b), zap.DebugLevel))
}

// TestAStoredRecordLoads: a record as the gateway wrote it before the
// users' auctions moved into users.Directory loads into it: the user's
// list, the engine's auto-bidders and the feeds all see its auctions, and
// the next save writes the same record back.
func TestAStoredRecordLoads(t *testing.T) {
	const stored = `{"version":1,"auctions":[` +
		`{"id":"11","productId":11,"title":"lot 11","url":"https://www.nellisauction.com/p/x/11","imageUrl":null,"config":{"maxBid":20,"incrementAmount":1,"strategy":"sniping","autoBid":true,"snipeSeconds":45},"addedAt":1700000000000},` +
		`{"id":"12","productId":12,"title":"lot 12","url":"https://www.nellisauction.com/p/x/12","imageUrl":"https://img/12.jpg","config":{"maxBid":35,"incrementAmount":1,"strategy":"auto","autoBid":false},"addedAt":1700000001000}]}`
	store := memstorage.New()
	_ = store.Store(context.Background(), users.RecordKey("alice"), []byte(stored))
	f := newFixture(t, testConfig(), Options{Storage: store})

	list := apiCall(t, f, "GET", "/api/auctions", tokenAlice, "", http.StatusOK)["auctions"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["title"] != "lot 11" || list[1].(map[string]any)["imageUrl"] != "https://img/12.jpg" ||
		list[1].(map[string]any)["config"].(map[string]any)["maxBid"] != 35.0 {
		t.Fatalf("the stored auctions: %v", list)
	}
	if got := f.relay.AutoBidders(11); len(got) != 1 || got[0].Config.SnipeSeconds != 45 || f.relay.AutoBidders(12) != nil {
		t.Fatalf("auto-bidders: %+v", got)
	}
	if f.feeds.subscribers(11) != 1 || f.feeds.subscribers(12) != 1 {
		t.Fatal("the stored auctions are not watched upstream")
	}
	rec, ok := f.relay.userSnapshot("alice")
	if !ok {
		t.Fatal("no record to save")
	}
	if err := users.NewStorageStore(store, users.StorageOptions{}).Save(context.Background(), "alice", rec, nil); err != nil {
		t.Fatal(err)
	}
	if got := string(store.Get(users.RecordKey("alice"))); got != stored {
		t.Fatalf("saved back as\n%s\nwant\n%s", got, stored)
	}
}
