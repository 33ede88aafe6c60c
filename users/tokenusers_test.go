package users

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/memstorage"
)

func TestTokenUsersComeAndGoBesideConfiguredOnes(t *testing.T) {
	d := NewDirectory()
	d.Set(map[string]string{"alice": "alices-token"})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, created := d.SignIn("bob", t0); !created {
		t.Fatal("bob's first sign-in made no account")
	}
	if prev, created := d.SignIn("bob", t0.Add(time.Hour)); created || !prev.Equal(t0) {
		t.Fatalf("second sign-in: prev %s created %v", prev, created)
	}
	if name, _ := d.Authenticate(""); name != "" {
		t.Fatalf("an empty token signs in as %q", name)
	}
	if d.Has("bob") || !slices.Equal(d.Names(), []string{"alice"}) {
		t.Fatalf("bob counts as configured: %v", d.Names())
	}
	// A reload that does not name bob leaves him; one that names him
	// makes him configured, and then a reload can remove him.
	if _, gone := d.Set(map[string]string{"alice": "alices-token"}); len(gone) != 0 || d.SignedIn("bob").IsZero() {
		t.Fatalf("a reload removed the token user: gone %v", gone)
	}
	if _, created := d.SignIn("alice", t0); created {
		t.Fatal("a configured user signing in with a token got a second account")
	}
	if got := d.Stale(t0.Add(2 * time.Hour)); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("stale: %v, want bob only (alice is configured)", got)
	}
	if d.Forget("alice") || !d.Forget("bob") || d.SignedIn("bob") != (time.Time{}) {
		t.Fatal("Forget must remove token users only")
	}
}

func TestSweepRemovesOnlyStaleTokenOnlyUsers(t *testing.T) {
	ctx := context.Background()
	st := memstorage.NewListing()
	s := NewStorageStore(st, StorageOptions{})
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for name, signedIn := range map[string]time.Time{
		"configured":    {},                      // never signed in with a token
		"old-token":     now.AddDate(0, 0, -100), // stale
		"recent-token":  now.AddDate(0, 0, -10),  // kept
		"kept-by-owner": now.AddDate(0, 0, -200), // stale, but the caller keeps it
		"configured2":   now.AddDate(-1, 0, 0),   // stale sign-in, but configured
	} {
		if err := s.Save(ctx, name, Record{SignedIn: signedIn}, nil); err != nil {
			t.Fatal(err)
		}
	}
	st.Put("nellis/users/broken.json", []byte("{"))
	st.Put("nellis/quarantine/old-token-1.json", []byte("{}"))
	keep := func(name string) bool { return name == "kept-by-owner" || name == "configured2" }
	res, err := s.Sweep(ctx, now.AddDate(0, 0, -90), keep)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Removed, []string{"old-token"}) || res.Stored != 5 {
		t.Fatalf("removed %v, %d stored; want old-token removed, 5 left", res.Removed, res.Stored)
	}
	if rec, err := s.Load(ctx, "old-token", nil); err != nil || !rec.SignedIn.IsZero() {
		t.Fatalf("old-token is still stored: %+v %v", rec, err)
	}
	if rec, _ := s.Load(ctx, "recent-token", nil); rec.SignedIn.IsZero() {
		t.Fatal("recent-token lost its record")
	}
	if st.Get("nellis/quarantine/old-token-1.json") == nil || st.Get("nellis/users/broken.json") == nil {
		t.Fatal("the sweep touched what is not a readable user record")
	}
	// Nothing stored yet: nothing to do, no error.
	if res, err := NewStorageStore(memstorage.NewListing(), StorageOptions{}).Sweep(ctx, now, keep); err != nil || res.Stored != 0 {
		t.Fatalf("empty storage: %+v %v", res, err)
	}
	if _, err := NewStorageStore(memstorage.New(), StorageOptions{}).Sweep(ctx, now, keep); !errors.Is(err, ErrCannotList) {
		t.Fatalf("a storage that cannot list: %v", err)
	}
}
