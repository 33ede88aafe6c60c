package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// Each connected node is live; a closed one drops out within a lease and
// a little (the server expires the key).
func TestLiveNodesFollowPresence(t *testing.T) {
	n := startNATS(t)
	a, b := n.bus("a"), n.bus("b")
	c := n.bus("c")
	ctx := testCtx(t)
	live, err := b.LiveNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(live) != "[a b c]" {
		t.Fatalf("live nodes %v, want [a b c]", live)
	}
	// Heartbeats keep them live past the key's age.
	time.Sleep(1500 * time.Millisecond)
	if live, _ := a.LiveNodes(ctx); fmt.Sprint(live) != "[a b c]" {
		t.Fatalf("after 1.5 leases the live nodes are %v, want [a b c]", live)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, func() bool {
		live, err := a.LiveNodes(ctx)
		return err == nil && fmt.Sprint(live) == "[a b]"
	})
}

// The rendezvous hash agrees everywhere, spreads products evenly, and a
// node leaving moves only its own products.
func TestRendezvousSpreadsAndMovesLittle(t *testing.T) {
	nodes := []string{"gw-1", "gw-2", "gw-3"}
	count := map[string]int{}
	for p := range int64(3000) {
		owner := Rendezvous(p, nodes)
		if owner != Rendezvous(p, []string{"gw-3", "gw-1", "gw-2"}) {
			t.Fatalf("product %d: the owner depends on the list's order", p)
		}
		count[owner]++
		if after := Rendezvous(p, []string{"gw-1", "gw-3"}); owner != "gw-2" && after != owner {
			t.Fatalf("product %d moved from %s to %s when gw-2 left", p, owner, after)
		}
		if grown := Rendezvous(p, append(slices.Clone(nodes), "gw-4")); grown != owner && grown != "gw-4" {
			t.Fatalf("product %d moved from %s to %s when gw-4 joined", p, owner, grown)
		}
	}
	for _, node := range nodes {
		if count[node] < 850 || count[node] > 1150 {
			t.Fatalf("rendezvous gave %v of 3000 products, want about 1000 each", count)
		}
	}
	if Rendezvous(1, nil) != "" {
		t.Fatal("no nodes must give no owner")
	}
}
