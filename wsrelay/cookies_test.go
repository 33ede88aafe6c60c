package wsrelay

import (
	"net/http"
	"slices"
	"testing"
)

// TestCookiesFor: snapshots of a product are fetched with the cookies of a
// user who monitors it, never with those of a user who does not; several
// take turns; failed cookies sit out until synced again.
func TestCookiesFor(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	alice := f.login(tokenAlice)
	bob := f.login(tokenBob)
	startMonitoring(alice, "77", 50)
	startMonitoring(bob, "88", 50)

	if got := cookiesFor(f.relay, 77); got != "" {
		t.Fatalf("before any sync: %q", got)
	}
	apiCall(t, f, "POST", "/api/auth", tokenBob, `{"cookies":"bob=1"}`, http.StatusOK)
	if got := cookiesFor(f.relay, 77); got != "" {
		t.Errorf("product 77 (alice's) got bob's cookies: %q", got)
	}
	if got := cookiesFor(f.relay, 88); got != "bob=1" {
		t.Errorf("product 88: %q, want bob's cookies", got)
	}
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"alice=1"}`, http.StatusOK)
	startMonitoring(alice, "88", 50)
	// Both monitor 88: they take turns, in name order, so each one's own
	// state is fetched.
	got := []string{cookiesFor(f.relay, 88), cookiesFor(f.relay, 88), cookiesFor(f.relay, 88), cookiesFor(f.relay, 88)}
	if got[0] == got[1] || got[0] != got[2] || got[1] != got[3] || !slices.Contains(got, "alice=1") || !slices.Contains(got, "bob=1") {
		t.Fatalf("product 88 with two users: %q, want alice's and bob's in turn", got)
	}
	// Cookies that failed a snapshot sit out until synced again.
	f.relay.mu.RLock()
	aliceKey := f.relay.users["alice"].stateKey
	f.relay.mu.RUnlock()
	f.relay.CookiesFailed(88, aliceKey)
	for range 2 {
		if got := cookiesFor(f.relay, 88); got != "bob=1" {
			t.Fatalf("after alice's cookies failed: %q, want bob's", got)
		}
	}
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"alice=2"}`, http.StatusOK)
	if got := []string{cookiesFor(f.relay, 88), cookiesFor(f.relay, 88)}; !slices.Contains(got, "alice=2") {
		t.Fatalf("after alice synced again: %q, want her new cookies in turn", got)
	}
	if got := f.relay.monitoredBy(88); len(got) != 2 {
		t.Errorf("monitoredBy(88) = %v", got)
	}
	if got := cookiesFor(f.relay, 99); got != "" {
		t.Errorf("unmonitored product: %q", got)
	}
}

// monitoredBy lists the users monitoring a product, for tests.
func (r *Relay) monitoredBy(productID int64) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var names []string
	for a := range r.monitors[productID] {
		if a.owner != nil && !slices.Contains(names, a.owner.name) {
			names = append(names, a.owner.name)
		}
	}
	slices.Sort(names)
	return names
}

// cookiesFor is CookiesFor without the key.
func cookiesFor(r *Relay, productID int64) string {
	_, cookies := r.CookiesFor(productID)
	return cookies
}
