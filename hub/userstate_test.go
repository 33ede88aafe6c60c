// What a snapshot says about the user whose cookies fetched it, and
// snapshots whose cookies fail.

package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellis"
)

// userFetcher answers like Nellis: with the cookies "good" the snapshot
// carries that user's userState; the cookies "bad" are refused (as the
// HTTP client refuses cookies with a control character, or the site
// redirects an expired session to its login page); the cookies "expired"
// get a 401; the cookies "down"
// meet a 503, as would anyone.
type userFetcher struct {
	mu      sync.Mutex
	price   float64
	winning bool
	broken  bool // every answer is undecodable, whoever asks
	cookies []string
}

func (f *userFetcher) Snapshot(_ context.Context, id int64, cookies string) (nellis.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cookies = append(f.cookies, cookies)
	if f.broken {
		return nellis.Snapshot{}, fmt.Errorf("nellis: json snapshot: %w", nellis.ErrNoData)
	}
	switch cookies {
	case "bad":
		return nellis.Snapshot{}, errors.New("nellis: cookies contain a control character")
	case "expired":
		return nellis.Snapshot{}, &nellis.StatusError{Code: 401}
	case "down":
		return nellis.Snapshot{}, &nellis.StatusError{Code: 503}
	}
	p := lot(id, f.price, 4)
	p.NextBid, p.MinimumBid = ptr(f.price+1), ptr(f.price+1)
	if cookies == "good" {
		p.User = &nellis.UserState{IsWinning: ptr(f.winning), IsWatching: ptr(true), NextBid: ptr(f.price + 1)}
	}
	return nellis.Snapshot{Patch: p, Format: nellis.FormatJSON}, nil
}

func (f *userFetcher) set(price float64, winning bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.price, f.winning = price, winning
}

func (f *userFetcher) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cookies...)
}

// TestUserStateIsKeptApart: the userState of a snapshot fetched with a
// user's cookies rides on the change tagged with that user's key and never
// enters the shared product or its JSON; a change of that user's standing
// alone is published too, so it reaches them.
func TestUserStateIsKeptApart(t *testing.T) {
	uf := &userFetcher{price: 100, winning: true}
	e := newEnv(t, Config{}, func(d *Deps) {
		d.Snapshots = uf
		d.Cookies = func(int64) (string, string) { return "alice-key", "good" }
	})
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	e.waitPoll(SourcePoll)
	c := e.waitChange(r)
	if c.User == nil || c.User.Owner != "alice-key" || !c.User.IsWinning || !c.User.IsWatching || c.User.NextBid != 101 {
		t.Fatalf("user state %+v, want alice's: winning, watching, next bid 101", c.User)
	}
	for _, field := range []string{"isWinning", "isWatching", "nextBid", "minimumBid"} {
		if bytes.Contains(c.JSON, []byte(field)) {
			t.Errorf("the shared JSON carries %s: %s", field, c.JSON)
		}
	}
	if c.Product.NextBid != 101 {
		t.Errorf("public next bid %v, want the price plus one", c.Product.NextBid)
	}

	// Only alice's standing changes: still a change, for her.
	uf.set(100, false)
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	c = e.waitChange(r)
	if c.User == nil || c.User.IsWinning || c.Product.CurrentBid != 100 {
		t.Fatalf("after alice was outbid at the same price: %+v, %+v", c.User, c.Product)
	}
	// Nothing changed: nothing published.
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	e.noChange(r)
}

// TestAnonymousSnapshotWhenCookiesFail: a snapshot that fails with a
// user's cookies is fetched again without them, so the lot stays fresh for
// everyone; the owner is reported so its cookies are not given again.
func TestAnonymousSnapshotWhenCookiesFail(t *testing.T) {
	for _, cookies := range []string{"bad", "expired"} {
		t.Run(cookies, func(t *testing.T) { testAnonymousFallback(t, cookies) })
	}
}

func testAnonymousFallback(t *testing.T, cookies string) {
	uf := &userFetcher{price: 100}
	failed := make(chan string, 10)
	e := newEnv(t, Config{}, func(d *Deps) {
		d.Snapshots = uf
		d.Cookies = func(int64) (string, string) { return "bob-key", cookies }
		d.CookiesFailed = func(id int64, owner string) {
			if id == 7 {
				failed <- owner
			}
		}
	})
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	if p := e.waitPoll(SourcePoll); p.err != nil {
		t.Fatalf("poll failed: %v", p.err)
	}
	c := e.waitChange(r)
	if c.Product.CurrentBid != 100 || c.User != nil {
		t.Fatalf("change %+v with user state %+v, want the anonymous price and nobody's state", c.Product, c.User)
	}
	select {
	case owner := <-failed:
		if owner != "bob-key" {
			t.Errorf("reported %q, want bob's key", owner)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the failed cookies were not reported")
	}
	if got := uf.sent(); len(got) != 2 || got[0] != cookies || got[1] != "" {
		t.Errorf("fetched with %q, want bob's cookies then none", got)
	}
	if st := e.h.Status(); len(st) != 1 || st[0].Degraded != "" {
		t.Errorf("status %+v, want a healthy feed", st)
	}
}

// cookieEnv is a hub whose snapshots come from uf, fetched with one
// user's cookies (owner's key, cookies); it records whose cookies the hub
// blames.
func cookieEnv(t *testing.T, uf *userFetcher, owner, cookies string) (*env, *sync.Map) {
	t.Helper()
	blamed := new(sync.Map)
	e := newEnv(t, Config{}, func(d *Deps) {
		d.Snapshots = uf
		d.Cookies = func(int64) (string, string) { return owner, cookies }
		d.CookiesFailed = func(_ int64, owner string) { blamed.Store(owner, true) }
	})
	return e, blamed
}

// TestNoAnonymousRetryWhenTheSiteFails: a 503 says the site is in trouble,
// whoever asks: no second request, and the cookies are not blamed.
func TestNoAnonymousRetryWhenTheSiteFails(t *testing.T) {
	uf := &userFetcher{price: 100}
	e, blamed := cookieEnv(t, uf, "carol-key", "down")
	defer e.h.Subscribe(7, newRecorder())()
	if p := e.waitPoll(SourcePoll); p.err == nil {
		t.Fatal("a 503 succeeded")
	}
	if got := uf.sent(); len(got) != 1 {
		t.Errorf("fetched with %q, want one request", got)
	}
	if _, ok := blamed.Load("carol-key"); ok {
		t.Error("cookies blamed for a 503")
	}
}

// TestAnonymousRetryNotRepeatedWhileItFails: when the anonymous snapshot
// fails too, the site is at fault: the next poll does not double its
// requests, and the cookies are not blamed.
func TestAnonymousRetryNotRepeatedWhileItFails(t *testing.T) {
	uf := &userFetcher{price: 100, broken: true}
	e, blamed := cookieEnv(t, uf, "dan-key", "good")
	defer e.h.Subscribe(7, newRecorder())()
	e.waitPoll(SourcePoll)
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	if got := uf.sent(); len(got) != 3 || got[0] != "good" || got[1] != "" || got[2] != "good" {
		t.Errorf("fetched with %q, want the cookies, none, then the cookies alone", got)
	}
	if _, ok := blamed.Load("dan-key"); ok {
		t.Error("cookies blamed for a site that fails for everyone")
	}
}

// TestTakingTurnsIsNoNews: snapshots fetched in turn with two users'
// cookies bring each one's standing; once both are known, polls that
// change nothing publish nothing.
func TestTakingTurnsIsNoNews(t *testing.T) {
	uf := &userFetcher{price: 100, winning: true}
	var turn atomic.Int32
	e := newEnv(t, Config{}, func(d *Deps) {
		d.Snapshots = uf
		d.Cookies = func(int64) (string, string) {
			return []string{"ann-key", "ben-key"}[turn.Add(1)%2], "good"
		}
	})
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	owners := map[string]bool{}
	for range 2 {
		e.waitPoll(SourcePoll)
		c := e.waitChange(r)
		if c.User == nil {
			t.Fatalf("change without the user's state: %+v", c)
		}
		owners[c.User.Owner] = true
		e.clk.Advance(2 * time.Second)
	}
	if !owners["ann-key"] || !owners["ben-key"] {
		t.Fatalf("states of %v, want both users'", owners)
	}
	for range 2 {
		e.waitPoll(SourcePoll)
		e.noChange(r)
		e.clk.Advance(2 * time.Second)
	}
}
