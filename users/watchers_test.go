package users

import "testing"

// Watchers counts users, not auctions: a user with two auctions of a lot
// is one watcher, and one who stops is gone.
func TestDirectoryWatchers(t *testing.T) {
	d := NewDirectory()
	d.Set(map[string]string{"alice": "a1", "bob": "b1"})
	d.Monitor("alice", Auction{ID: "a-88", ProductID: 88})
	d.Monitor("alice", Auction{ID: "a-88-again", ProductID: 88})
	d.Monitor("bob", Auction{ID: "b-88", ProductID: 88})
	if n := d.Watchers(88); n != 2 {
		t.Fatalf("%d watchers, want 2", n)
	}
	d.Unmonitor("bob", "b-88")
	if n := d.Watchers(88); n != 1 {
		t.Fatalf("%d watchers after bob left, want 1", n)
	}
	if n := d.Watchers(77); n != 0 {
		t.Fatalf("%d watchers of a lot nobody monitors", n)
	}
}
