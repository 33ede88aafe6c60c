package wsrelay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/tokens"
	"github.com/nellis-edge/gateway/users"
)

const testJWTKey = "a-test-hmac-key-of-at-least-32-bytes!"

// jwtConfig is testConfig with signed tokens accepted.
func jwtConfig(extra ...string) Config {
	cfg := testConfig()
	cfg.JWT = tokens.Config{HMACKey: testJWTKey, PublicKeys: extra}
	return cfg
}

// hs256 signs claims with the test key; sub and a one-hour exp unless
// given.
func hs256(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testJWTKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// refusedWith sends authenticate with token and checks the refusal's text.
func (c *client) refusedWith(token, want string) {
	c.t.Helper()
	c.send(map[string]any{"type": "authenticate", "token": token, "requestId": "auth"})
	m := c.expectType("authenticated")
	if m["success"] == true || !strings.Contains(m["error"].(string), want) {
		c.t.Fatalf("got %v, want a refusal saying %q", m, want)
	}
	if strings.Contains(m["error"].(string), token) {
		c.t.Fatalf("the refusal quotes the token: %v", m)
	}
}

func TestJWTSignsInAsItsSubOnSocketsAndREST(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	pemFile := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	store := memstorage.New()
	f := newFixture(t, jwtConfig(pemFile), Options{Storage: store})

	carol := f.login(hs256(t, jwt.MapClaims{"sub": "carol@example.com"}))
	startMonitoring(carol, "300", 20)
	es, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "dave", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	dave := f.login(es)
	dave.send(map[string]any{"type": "getMonitoredAuctions", "requestId": 1})
	if list := dave.expectType("response")["data"].(map[string]any)["auctions"].([]any); len(list) != 0 {
		t.Fatalf("dave, new, lists %v", list)
	}
	// The configured users still sign in with their tokens.
	f.login(tokenAlice).roundTrip()
	// REST takes the same token, raw or Bearer.
	status := apiCall(t, f, "GET", "/api/status", "Bearer "+hs256(t, jwt.MapClaims{"sub": "carol@example.com"}), "", 200)
	if status["monitoredAuctions"] != 1.0 || status["user"] != "carol@example.com" {
		t.Fatalf("carol's status over REST: %v", status)
	}
	apiCall(t, f, "GET", "/api/status", hs256(t, jwt.MapClaims{"sub": "carol@example.com", "exp": time.Now().Add(-time.Hour).Unix()}), "", 401)

	// carol's record is stored like a configured user's, with her sign-in.
	waitFor(t, "carol's record", func() bool { return store.Get(users.RecordKey("carol@example.com")) != nil })
	var rec users.StoredRecord
	if err := json.Unmarshal(store.Get(users.RecordKey("carol@example.com")), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.Auctions) != 1 || rec.Auctions[0].ID != "300" || rec.SignedIn.IsZero() {
		t.Fatalf("stored %+v", rec)
	}
	// After a restart she finds her auction again.
	f.close()
	f2 := newFixture(t, jwtConfig(), Options{Storage: store})
	again := f2.login(hs256(t, jwt.MapClaims{"sub": "carol@example.com"}))
	again.send(map[string]any{"type": "getMonitoredAuctions", "requestId": 1})
	if list := again.expectType("response")["data"].(map[string]any)["auctions"].([]any); len(list) != 1 {
		t.Fatalf("after a restart carol lists %v", list)
	}
}

// TestBadJWTsAreRefusedAndCountAsFailures: each refusal says why, and they
// count toward the socket's auth_failures like a wrong token.
func TestBadJWTsAreRefusedAndCountAsFailures(t *testing.T) {
	cfg := jwtConfig()
	cfg.AuthFailures = 3
	cfg.JWT.Issuer = "https://auth.example.com"
	f := newFixture(t, cfg, Options{})
	iss := "https://auth.example.com"
	c := f.connect()
	c.refusedWith(hs256(t, jwt.MapClaims{"sub": "erin", "iss": iss, "exp": time.Now().Add(-time.Hour).Unix()}), "token expired")
	c.refusedWith(hs256(t, jwt.MapClaims{"sub": "../x", "iss": iss}), "not a safe user name")
	c.refusedWith(hs256(t, jwt.MapClaims{"sub": "erin", "iss": "https://evil.example.com"}), "issuer not accepted")
	if ce := c.closeFrame(); ce.Code != websocket.ClosePolicyViolation || ce.Text != reasonAuthFailures {
		t.Fatalf("after 3 bad tokens: closed with %d %q", ce.Code, ce.Text)
	}
	d := f.connect()
	d.refusedWith(hs256(t, jwt.MapClaims{"sub": "erin", "iss": iss, "nbf": time.Now().Add(time.Hour).Unix()}), "not valid yet")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "erin", "iss": iss, "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	d.refusedWith(none, "algorithm not allowed")
	if f.relay.Stats().Users != 2 {
		t.Fatalf("a refused token made a user: %+v", f.relay.Stats())
	}
}

// TestSocketClosedWhenItsTokenExpires: 1008 "token expired" at exp, not
// before; a socket that signs in again with a fresh token stays.
func TestSocketClosedWhenItsTokenExpires(t *testing.T) {
	f := newFixture(t, jwtConfig(), Options{})
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	short := f.login(hs256(t, jwt.MapClaims{"sub": "frank", "exp": exp.Unix()}))
	renewed := f.login(hs256(t, jwt.MapClaims{"sub": "frank", "exp": exp.Unix()}))
	renewed.authenticate(hs256(t, jwt.MapClaims{"sub": "frank"})) // an hour
	ce := short.closeFrame()
	closedAt := time.Now()
	if ce.Code != websocket.ClosePolicyViolation || ce.Text != reasonTokenExpired {
		t.Fatalf("closed with %d %q, want 1008 %q", ce.Code, ce.Text, reasonTokenExpired)
	}
	if closedAt.Before(exp) || closedAt.After(exp.Add(time.Second)) {
		t.Fatalf("closed at %s, want at exp %s", closedAt.Format(time.StampMilli), exp.Format(time.StampMilli))
	}
	renewed.roundTrip()
}

func TestTwoJWTUsersNeverSeeEachOthersAuctions(t *testing.T) {
	f := newFixture(t, jwtConfig(), Options{})
	gina := f.login(hs256(t, jwt.MapClaims{"sub": "gina"}))
	hal := f.login(hs256(t, jwt.MapClaims{"sub": "hal"}))
	startMonitoring(gina, "400", 10)
	startMonitoring(hal, "500", 10)
	f.feeds.publish(newChange(t, product(400, 5), "e", 1))
	f.feeds.publish(newChange(t, product(500, 6), "e", 1))
	if a := auctionOf(gina.expectType("auctionState")); a["id"] != "400" {
		t.Fatalf("gina got %v", a)
	}
	if a := auctionOf(hal.expectType("auctionState")); a["id"] != "500" {
		t.Fatalf("hal got %v", a)
	}
	gina.roundTrip() // nothing of hal's reached gina
	hal.roundTrip()
	hal.send(map[string]any{"type": "updateConfig", "auctionId": "400", "config": map[string]any{"maxBid": 1}, "requestId": "u"})
	hal.expectError("Auction 400 not found", "u")
}

// TestRetentionRemovesOnlyStaleTokenUsers: a user known only from tokens
// who has not signed in for user_retention goes, from storage and from
// memory; configured users, recent token users and a token user with an
// open socket stay.
func TestRetentionRemovesOnlyStaleTokenUsers(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	store := memstorage.NewListing()
	st := users.NewStorageStore(store, users.StorageOptions{})
	ctx := context.Background()
	for name, signedIn := range map[string]time.Time{
		"alice":  now.AddDate(-1, 0, 0), // configured, once signed in with a token
		"stale":  now.AddDate(0, 0, -91),
		"recent": now.AddDate(0, 0, -89),
	} {
		if err := st.Save(ctx, name, users.Record{SignedIn: signedIn}, nil); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t, jwtConfig(), Options{Store: st, Now: clock})
	// The sweep at start has run once the config is in place.
	waitFor(t, "the first sweep", func() bool { _, ok := f.relay.StoredUsers(); return ok })
	if n, _ := f.relay.StoredUsers(); n != 2 || store.Get(users.RecordKey("stale")) != nil {
		t.Fatalf("after the first sweep: %d stored, stale's record %q", n, store.Get(users.RecordKey("stale")))
	}
	// Two token users sign in; one leaves, one stays connected.
	leaver := f.login(hs256(t, jwt.MapClaims{"sub": "leaver", "exp": now.Add(200 * 24 * time.Hour).Unix()}))
	startMonitoring(leaver, "600", 10)
	f.login(hs256(t, jwt.MapClaims{"sub": "stayer", "exp": now.Add(200 * 24 * time.Hour).Unix()}))
	waitFor(t, "leaver's record", func() bool { return store.Get(users.RecordKey("leaver")) != nil })
	leaver.ws.Close()
	waitFor(t, "leaver's socket to close", func() bool { return f.relay.Stats().Authenticated == 1 })

	mu.Lock()
	now = now.AddDate(0, 0, 100)
	mu.Unlock()
	removed, err := f.relay.SweepUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if !slices.Equal(removed, []string{"leaver", "recent"}) {
		t.Fatalf("removed %v, want leaver and recent", removed)
	}
	for _, name := range []string{"alice", "stayer"} {
		if store.Get(users.RecordKey(name)) == nil {
			t.Errorf("%s's record was removed", name)
		}
	}
	if f.relay.Stats().Users != 3 || f.feeds.subscribers(600) != 0 { // alice, bob, stayer
		t.Fatalf("leaver is still in memory: %+v, product 600 has %d subscribers", f.relay.Stats(), f.feeds.subscribers(600))
	}
	if n, _ := f.relay.StoredUsers(); n != 2 {
		t.Errorf("stored users after the sweep: %d, want 2 (alice, stayer)", n)
	}
}

// TestReloadWithoutJWTSignsOutTokenSockets: a config without the jwt block
// takes signed tokens away: their sockets are signed out (their next
// request is refused), the configured users' are not, and the tokens no
// longer sign in.
func TestReloadWithoutJWTSignsOutTokenSockets(t *testing.T) {
	f := newFixture(t, jwtConfig(), Options{})
	token := hs256(t, jwt.MapClaims{"sub": "ivan"})
	ivan := f.login(token)
	alice := f.login(tokenAlice)
	if err := f.relay.UpdateConfig(testConfig()); err != nil {
		t.Fatal(err)
	}
	ivan.send(map[string]any{"type": "startMonitoring", "auctionId": "700", "requestId": "s"})
	ivan.expectError(errNotAuthed, "s")
	alice.roundTrip()
	startMonitoring(alice, "701", 5)
	ivan.refusedWith(token, errInvalidToken)
}
