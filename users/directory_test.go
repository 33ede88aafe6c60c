package users

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// A token signs in as its user and as nobody else; an empty directory
// says nobody is configured, which the relay answers as a
// misconfiguration rather than a wrong token.
func TestDirectoryAuthenticate(t *testing.T) {
	d := NewDirectory()
	if name, configured := d.Authenticate("alice-token"); name != "" || configured {
		t.Fatalf("empty directory: %q configured=%v", name, configured)
	}
	d.Set(map[string]string{"alice": "alice-token", "bob": "bob-token"})
	for token, want := range map[string]string{"alice-token": "alice", "bob-token": "bob", "nope": "", "": "", "alice-token ": ""} {
		if name, configured := d.Authenticate(token); name != want || !configured {
			t.Errorf("Authenticate(%q) = %q configured=%v, want %q", token, name, configured, want)
		}
	}
	if !d.Holds("alice", "alice-token") || d.Holds("alice", "bob-token") || d.Holds("carol", "alice-token") {
		t.Error("Holds tells another token or user as holding")
	}
	if !d.Has("bob") || d.Has("carol") {
		t.Error("Has is wrong")
	}
	if got := d.Names(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("Names = %v", got)
	}
}

// A reload reports whose sessions no longer hold: a changed token and a
// removed user; a new user and an unchanged token are neither. The old
// token signs in no more.
func TestDirectorySet(t *testing.T) {
	d := NewDirectory()
	if changed, gone := d.Set(map[string]string{"alice": "a1", "bob": "b1", "carol": "c1"}); changed != nil || gone != nil {
		t.Fatalf("first Set: changed %v gone %v", changed, gone)
	}
	changed, gone := d.Set(map[string]string{"alice": "a1", "bob": "b2", "dave": "d1"})
	if !slices.Equal(changed, []string{"bob"}) || !slices.Equal(gone, []string{"carol"}) {
		t.Errorf("Set: changed %v gone %v, want [bob] [carol]", changed, gone)
	}
	if name, _ := d.Authenticate("b1"); name != "" {
		t.Errorf("bob's old token signs in as %q", name)
	}
	if name, _ := d.Authenticate("c1"); name != "" {
		t.Errorf("removed carol's token signs in as %q", name)
	}
	if name, _ := d.Authenticate("d1"); name != "dave" {
		t.Errorf("new dave's token signs in as %q", name)
	}
}

// Sign-ins and reloads at once (run with -race).
func TestDirectoryConcurrent(t *testing.T) {
	d := NewDirectory()
	d.Set(map[string]string{"alice": "a1"})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 200 {
				if i%2 == 0 {
					d.Authenticate("a1")
				} else {
					d.Set(map[string]string{"alice": "a1", "bob": "b1"})
				}
			}
		})
	}
	wg.Wait()
	if name, _ := d.Authenticate("a1"); name != "alice" {
		t.Errorf("after the reloads a1 signs in as %q", name)
	}
}

// Snapshots of a product are fetched with the cookies of a user who
// monitors it, never with those of one who does not; several take turns
// in name order; failed cookies sit out until synced again; a user's
// cookies outlive a token change but not the user's removal.
func TestDirectoryCookiesFor(t *testing.T) {
	d := NewDirectory()
	d.Set(map[string]string{"alice": "a1", "bob": "b1"})
	d.Monitor("alice", Auction{ID: "77", ProductID: 77})
	d.Monitor("bob", Auction{ID: "88", ProductID: 88})
	if owner, cookies := d.CookiesFor(77); owner != "" || cookies != "" {
		t.Fatalf("before any sync: %q", cookies)
	}
	bobKey, _ := d.SetCookies("bob", "bob=1")
	if _, cookies := d.CookiesFor(77); cookies != "" {
		t.Errorf("product 77 (alice's) got bob's cookies: %q", cookies)
	}
	if owner, cookies := d.CookiesFor(88); cookies != "bob=1" || owner != bobKey {
		t.Errorf("product 88: %q %q, want bob's cookies and key %q", owner, cookies, bobKey)
	}
	aliceKey, _ := d.SetCookies("alice", "alice=1")
	if aliceKey == bobKey {
		t.Fatal("two users share a state key")
	}
	d.Monitor("alice", Auction{ID: "88", ProductID: 88})
	d.Monitor("alice", Auction{ID: "88-b", ProductID: 88}) // a second auction of the same product
	var got []string
	for range 4 {
		_, cookies := d.CookiesFor(88)
		got = append(got, cookies)
	}
	if got[0] == got[1] || got[0] != got[2] || got[1] != got[3] || !slices.Contains(got, "alice=1") || !slices.Contains(got, "bob=1") {
		t.Fatalf("product 88 with two users: %q, want alice's and bob's in turn", got)
	}
	if d.CookiesFailed(aliceKey) != "alice" || d.CookiesFailed(aliceKey) != "" {
		t.Error("CookiesFailed does not name the owner once")
	}
	for range 2 {
		if _, cookies := d.CookiesFor(88); cookies != "bob=1" {
			t.Fatalf("after alice's cookies failed: %q, want bob's", cookies)
		}
	}
	newKey, _ := d.SetCookies("alice", "alice=2")
	if newKey == aliceKey {
		t.Error("new cookies keep the old state key")
	}
	if got := []string{cookiesOnly(d.CookiesFor(88)), cookiesOnly(d.CookiesFor(88))}; !slices.Contains(got, "alice=2") {
		t.Fatalf("after alice synced again: %q, want her new cookies in turn", got)
	}
	d.Unmonitor("alice", "88")
	if !d.Monitored(88) {
		t.Error("88 unmonitored while alice has another auction of it")
	}
	d.Unmonitor("alice", "88-b")
	d.Unmonitor("bob", "88")
	if d.Monitored(88) || d.Monitored(99) {
		t.Error("a product nobody monitors counts as monitored")
	}
	d.Set(map[string]string{"alice": "a2"})
	if c := d.Cookies("alice"); c.Cookies != "alice=2" || c.StateKey != newKey {
		t.Errorf("after a token change alice has %q %q", c.Cookies, c.StateKey)
	}
	if c := d.Cookies("bob"); c.Cookies != "" {
		t.Errorf("removed bob's cookies are kept: %q", c.Cookies)
	}
}

func cookiesOnly(_, cookies string) string { return cookies }

// Saved cookies no key could open are kept to write back, and opened by
// the key a reload brings, without a new state key.
func TestDirectoryReopen(t *testing.T) {
	key := make([]byte, 32)
	key[0] = 1
	sealed, err := SealCookies(key, "alice", "alice=1")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDirectory()
	d.Set(map[string]string{"alice": "a1", "bob": "b1"})
	stateKey, _ := d.Restore("alice", Record{Unopened: sealed})
	d.Restore("bob", Record{Cookies: "bob=1"})
	if c := d.Cookies("alice"); c.Cookies != "" || c.Unopened != sealed {
		t.Fatalf("restored: %q %q", c.Cookies, c.Unopened)
	}
	if opened := d.Reopen(make([]byte, 32)); opened != nil {
		t.Errorf("a wrong key opened %v", opened)
	}
	if opened := d.Reopen(key); !slices.Equal(opened, []string{"alice"}) {
		t.Errorf("Reopen = %v, want [alice]", opened)
	}
	if c := d.Cookies("alice"); c.Cookies != "alice=1" || c.StateKey != stateKey {
		t.Errorf("reopened: %q key %q, want alice=1 key %q", c.Cookies, c.StateKey, stateKey)
	}
	if c := d.Cookies("alice"); c.Unopened != "" {
		t.Error("opened cookies are still written back sealed")
	}
}

// A product left counts for the linger after it was left and is then
// forgotten; a removed user's are forgotten at once.
func TestDirectoryLingering(t *testing.T) {
	d := NewDirectory()
	d.Set(map[string]string{"alice": "a1"})
	t0 := time.Unix(1000, 0)
	d.Left("alice", t0, 5, 6)
	d.Left("alice", t0.Add(20*time.Second), 7)
	d.Left("carol", t0, 8) // not configured: nothing kept
	if got := d.Lingering("alice", t0.Add(10*time.Second), 30*time.Second); !slices.Equal(got, []int64{5, 6, 7}) {
		t.Errorf("after 10s: %v", got)
	}
	if got := d.Lingering("alice", t0.Add(30*time.Second), 30*time.Second); !slices.Equal(got, []int64{7}) {
		t.Errorf("after 30s: %v, want [7]", got)
	}
	if got := d.Lingering("carol", t0, 30*time.Second); got != nil {
		t.Errorf("carol: %v", got)
	}
	d.Set(map[string]string{"bob": "b1"})
	d.Set(map[string]string{"alice": "a1"})
	if got := d.Lingering("alice", t0.Add(30*time.Second), 30*time.Second); got != nil {
		t.Errorf("removed and added again, alice keeps %v", got)
	}
}
