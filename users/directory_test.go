package users

import (
	"slices"
	"sync"
	"testing"
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
