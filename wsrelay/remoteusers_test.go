package wsrelay

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/users"
)

// TestRemoteUsersAreLoadedToBidBoundedAndLetGo: a token user stored by
// another node, never signed in here, is loaded for this node's engine
// (their auto-bid, cookies and interest in the lot), at most limit of
// them at once; one who then signs in here is this node's user and is
// never let go as remote; the others are let go once this node needs
// none of their lots, and their account goes with them.
func TestRemoteUsersAreLoadedToBidBoundedAndLetGo(t *testing.T) {
	store := users.NewStorageStore(memstorage.New(), users.StorageOptions{})
	ctx := context.Background()
	keyHex := strings.Repeat("ab", 32)
	key, err := ParseCookieKey(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	cfg := users.DefaultAuctionConfig
	cfg.AutoBid, cfg.MaxBid = true, 50
	for i, name := range []string{"ivy", "joe", "kim"} {
		rec := users.Record{Cookies: "sim_user=" + name, SignedIn: time.Now().Add(-time.Hour),
			Auctions: []users.Auction{{ID: "100", ProductID: 100, AddedAt: int64(i + 1), Config: cfg}}}
		if err := store.Save(ctx, name, rec, key); err != nil {
			t.Fatal(err)
		}
	}
	cfgRelay := jwtConfig()
	cfgRelay.CookieKey = keyHex
	f := newFixture(t, cfgRelay, Options{Store: store})
	bidders := func() []string {
		var names []string
		for _, b := range f.relay.dir.AutoBidders(100) {
			names = append(names, b.User)
		}
		slices.Sort(names)
		return names
	}

	for _, name := range []string{"ivy", "joe"} {
		if ok, err := f.relay.LoadRemoteUser(ctx, name, 2); !ok || err != nil {
			t.Fatalf("loading %s: %v, %v", name, ok, err)
		}
	}
	if got := bidders(); !slices.Equal(got, []string{"ivy", "joe"}) {
		t.Fatalf("auto-bidders on 100: %v", got)
	}
	if owner, cookies := f.relay.dir.CookiesFor(100); owner == "" || cookies == "" {
		t.Error("no remote user's cookies for the lot's snapshots")
	}
	if f.feeds.subscribers(100) == 0 {
		t.Error("the relay took no interest in the remote users' lot")
	}
	if ok, err := f.relay.LoadRemoteUser(ctx, "kim", 2); ok || !errors.Is(err, ErrRemoteUsersFull) {
		t.Fatalf("a third remote user under a bound of 2: %v, %v", ok, err)
	}
	if ok, err := f.relay.LoadRemoteUser(ctx, "ivy", 2); ok || err != nil {
		t.Fatalf("ivy again: %v, %v", ok, err)
	}
	if ok, err := f.relay.LoadRemoteUser(ctx, "alice", 3); ok || err != nil || f.relay.RemoteUsers() != 2 {
		t.Fatalf("a configured user loaded as a remote one: %v, %v", ok, err)
	}

	// joe signs in here: no longer remote, and a place is free.
	f.login(hs256(t, jwt.MapClaims{"sub": "joe"}))
	if n := f.relay.RemoteUsers(); n != 1 {
		t.Fatalf("%d remote users after joe signed in here, want 1", n)
	}
	if ok, err := f.relay.LoadRemoteUser(ctx, "kim", 2); !ok || err != nil {
		t.Fatalf("kim once a place is free: %v, %v", ok, err)
	}

	if gone := f.relay.ReleaseRemoteUsers(func(int64) bool { return true }); len(gone) != 0 {
		t.Fatalf("let go of %v while this node still owns their lot", gone)
	}
	gone := f.relay.ReleaseRemoteUsers(func(int64) bool { return false })
	if !slices.Equal(gone, []string{"ivy", "kim"}) {
		t.Fatalf("let go of %v, want [ivy kim]", gone)
	}
	if got := bidders(); !slices.Equal(got, []string{"joe"}) {
		t.Fatalf("auto-bidders on 100 after the release: %v", got)
	}
	if f.relay.dir.Has("ivy") || f.relay.Loaded("ivy") || !f.relay.Loaded("joe") {
		t.Error("ivy's account stayed, or joe's went")
	}
}
