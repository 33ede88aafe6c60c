package wsrelay

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/users"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// testIPHeader names the client address of a test request: the fixture's
// sockets all come from 127.0.0.1, and the per-address limits need more.
const testIPHeader = "X-Test-Client-Ip"

func headerClientIP(req *http.Request) string { return req.Header.Get(testIPHeader) }

func fromAddr(ip string) http.Header { return http.Header{testIPHeader: {ip}} }

// restAs calls GET /api/status from ip with token and returns the status
// and the response's Retry-After.
func restAs(t *testing.T, f *fixture, ip, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/api/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(testIPHeader, ip)
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// tryAuthenticate sends authenticate and returns the reply.
func (c *client) tryAuthenticate(token string) map[string]any {
	c.t.Helper()
	c.send(map[string]any{"type": "authenticate", "token": token, "requestId": "auth"})
	return c.expectType("authenticated")
}

// closeFrame reads until the socket ends and returns the close frame the
// relay sent.
func (c *client) closeFrame() *websocket.CloseError {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("the socket ended without a close frame: %v", err)
		}
		return ce
	}
}

// TestFailedAuthenticateClosesSocket: a socket gets AuthFailures tries;
// each is answered, and the last closes it with 1008 and a reason.
func TestFailedAuthenticateClosesSocket(t *testing.T) {
	cfg := testConfig()
	cfg.AuthFailures = 3
	f := newFixture(t, cfg, Options{})
	c := f.connect()
	for i, token := range []string{"guess-1", "   ", "guess-2"} {
		if m := c.tryAuthenticate(token); m["success"] != false || m["error"] != errInvalidToken {
			t.Fatalf("guess %d: %v", i+1, m)
		}
	}
	if ce := c.closeFrame(); ce.Code != websocket.ClosePolicyViolation || ce.Text != reasonAuthFailures {
		t.Errorf("after 3 failures: closed with %d %q, want 1008 %q", ce.Code, ce.Text, reasonAuthFailures)
	}
	// Another socket still signs in: the limit is the socket's.
	f.login(tokenAlice).roundTrip()
}

// TestAuthBudgetSharedBySocketsAndREST: an address's failed sign-ins on
// sockets and REST draw on one budget; once it is spent even the right
// token is refused (REST 429, socket closed) until it refills, while
// other addresses are untouched and a successful sign-in costs nothing.
// An IPv6 /64 is one address.
func TestAuthBudgetSharedBySocketsAndREST(t *testing.T) {
	clock := &frozenClock{now: time.Unix(1_800_000_000, 0)}
	cfg := testConfig()
	cfg.AuthFailures = 10
	cfg.AuthFailuresPerMinute = 4
	f := newFixture(t, cfg, Options{Now: clock.Now, ClientIP: headerClientIP})
	const guesser = "2001:db8:1:2::10"

	sock := f.dial(fromAddr(guesser)).greeted()
	for range 2 {
		if m := sock.tryAuthenticate("guess"); m["success"] != false || m["error"] != errInvalidToken {
			t.Fatalf("socket guess: %v", m)
		}
	}
	// The same /64, another address: the same budget.
	for range 2 {
		if s, _ := restAs(t, f, "2001:db8:1:2::99", "Bearer guess"); s != http.StatusUnauthorized {
			t.Fatalf("REST guess: %d, want 401", s)
		}
	}
	s, retry := restAs(t, f, guesser, tokenAlice)
	if s != http.StatusTooManyRequests || retry != "15" {
		t.Errorf("right token after the budget is spent: %d Retry-After %q, want 429 and 15", s, retry)
	}
	if m := sock.tryAuthenticate(tokenAlice); m["success"] != false || m["error"] != errAuthBudgetSpent {
		t.Errorf("socket sign-in after the budget is spent: %v", m)
	}
	if ce := sock.closeFrame(); ce.Code != websocket.ClosePolicyViolation || ce.Text != reasonAuthFailures {
		t.Errorf("closed with %d %q, want 1008 %q", ce.Code, ce.Text, reasonAuthFailures)
	}

	// Other addresses: another /64, and IPv4.
	for _, ip := range []string{"2001:db8:1:3::10", "192.0.2.1"} {
		if s, _ := restAs(t, f, ip, tokenAlice); s != http.StatusOK {
			t.Errorf("from %s: %d, want 200", ip, s)
		}
	}
	// Successes cost nothing.
	for range 3 * cfg.AuthFailuresPerMinute {
		if s, _ := restAs(t, f, "192.0.2.2", tokenBob); s != http.StatusOK {
			t.Fatalf("a signed-in REST call was refused: %d", s)
		}
		f.dial(fromAddr("192.0.2.2")).greeted().authenticate(tokenBob)
	}
	// One attempt is back after a quarter minute.
	clock.Advance(15 * time.Second)
	if s, _ := restAs(t, f, guesser, tokenAlice); s != http.StatusOK {
		t.Errorf("after the budget refilled: %d, want 200", s)
	}
}

// TestTokenReadAlikeOnSocketAndREST: both sides read a token the same way:
// a blank one is refused, surrounding whitespace is not part of it.
func TestTokenReadAlikeOnSocketAndREST(t *testing.T) {
	cfg := testConfig()
	cfg.AuthFailures = 10
	f := newFixture(t, cfg, Options{})
	c := f.connect()
	for _, blank := range []string{"", " ", "\t "} {
		if m := c.tryAuthenticate(blank); m["success"] != false {
			t.Errorf("socket, token %q: %v", blank, m)
		}
		apiCall(t, f, http.MethodGet, "/api/status", "Bearer "+blank, "", http.StatusUnauthorized)
	}
	padded := " \t" + tokenAlice + " "
	if m := c.tryAuthenticate(padded); m["success"] != true {
		t.Errorf("socket, padded token: %v", m)
	}
	apiCall(t, f, http.MethodGet, "/api/status", padded, "", http.StatusOK)
}

// TestShortTokenWarning: a token under 16 characters is warned about
// once, when it is set, naming the user and never showing the token.
func TestShortTokenWarning(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	cfg := Config{Users: map[string]string{"alice": "x9q-7", "bob": "a-long-random-token-0123"}}
	r, err := New(context.Background(), cfg, Options{Feeds: newFakeFeeds(), Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown()
	check := func(when string, want ...string) {
		t.Helper()
		var named []string
		for _, e := range logs.TakeAll() {
			named = append(named, e.ContextMap()["user"].(string))
			if text := e.Message + " " + strings.Join(mapValues(e.ContextMap()), " "); strings.Contains(text, "x9q") || strings.Contains(text, "zz1") {
				t.Errorf("%s: the warning shows the token: %s", when, text)
			}
		}
		if strings.Join(named, ",") != strings.Join(want, ",") {
			t.Errorf("%s: warned about %v, want %v", when, named, want)
		}
	}
	check("at start", "alice")
	if err := r.UpdateConfig(cfg); err != nil {
		t.Fatal(err)
	}
	check("reload with the same tokens")
	cfg.Users = map[string]string{"alice": "x9q-7", "bob": "zz1", "carol": "a-long-random-token-4567"}
	if err := r.UpdateConfig(cfg); err != nil {
		t.Fatal(err)
	}
	check("reload with a new short token", "bob")
}

func mapValues(m map[string]any) []string {
	var out []string
	for _, v := range m {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// gatedStore is a user store whose loads of one user wait until open is
// closed.
type gatedStore struct {
	users.UserStore
	gated string
	open  chan struct{}
}

func (g gatedStore) Load(ctx context.Context, name string, key []byte) (users.Record, error) {
	if name == g.gated {
		<-g.open
	}
	return g.UserStore.Load(ctx, name, key)
}

// TestSignInsInFlightSpendNoBudget: valid sign-ins in flight together
// (a slow first load of a signed token's user, an office behind one
// NAT) are all admitted, however many exceed the address's
// failed-authentication budget: only failures spend it.
func TestSignInsInFlightSpendNoBudget(t *testing.T) {
	cfg := jwtConfig()
	cfg.AuthFailuresPerMinute = 2
	cfg.MaxUnauthenticatedPerAddress = 16
	st := gatedStore{UserStore: users.NewStorageStore(memstorage.New(), users.StorageOptions{}), gated: "carol", open: make(chan struct{})}
	f := newFixture(t, cfg, Options{Store: st})
	const n = 8
	token := hs256(t, jwt.MapClaims{"sub": "carol"})
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = f.connect()
		clients[i].send(map[string]any{"type": "authenticate", "token": token, "requestId": "auth"})
	}
	time.Sleep(200 * time.Millisecond) // every sign-in reaches the load
	close(st.open)
	for i, c := range clients {
		if m := c.expectType("authenticated"); m["success"] != true {
			t.Errorf("sign-in %d of %d in flight: %v", i+1, n, m)
		}
	}
	// The budget is whole: two guesses are answered as guesses, the
	// next sign-in finds it spent.
	c := f.connect()
	for range 2 {
		if m := c.tryAuthenticate("guess"); m["error"] != errInvalidToken {
			t.Fatalf("guess: %v", m)
		}
	}
	if m := c.tryAuthenticate(tokenAlice); m["error"] != errAuthBudgetSpent {
		t.Errorf("after two failures: %v, want %q", m, errAuthBudgetSpent)
	}
}
