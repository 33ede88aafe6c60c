package cluster

import (
	"context"
	"testing"
	"time"
)

// One watch tells a node every claim and release, and starts Claim's
// count: a holder quiet for a lease since the watch saw its key is taken
// over at the first claim, without a claim to start the count.
func TestWatchOwnersSeesClaimsAndStartsTheCount(t *testing.T) {
	n := startNATS(t)
	a, b := n.bus("a"), n.bus("b")
	changes := make(chan OwnerChange, 16)
	// The context bounds starting the watch, not the watch.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	sub, err := b.WatchOwners(ctx, func(c OwnerChange) { changes <- c })
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	next := func(want OwnerChange) {
		t.Helper()
		select {
		case got := <-changes:
			if got != want {
				t.Fatalf("watched %+v, want %+v", got, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("watched nothing, want %+v", want)
		}
	}
	claim(t, a, 5) // and never renewed: a died
	next(OwnerChange{ProductID: 5, Node: "a"})
	time.Sleep(time.Second + 50*time.Millisecond)
	l, err := b.Claim(testCtx(t), 5)
	if err != nil {
		t.Fatalf("b's first claim a lease after the watch saw a's key: %v", err)
	}
	next(OwnerChange{ProductID: 5, Node: "b"})
	if err := b.Release(testCtx(t), l); err != nil {
		t.Fatal(err)
	}
	next(OwnerChange{ProductID: 5})
}
