package e2e

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/tokens"
)

// TestClusterSignedTokenUserOfAnotherNodeIsBidForByTheOwner: a bidder no
// `user` line names (a signed token's) signs in only on node B, syncs
// cookies there and auto-bids on lot P, whose feed node A owns (A is the
// node the rendezvous hash ranks first for P, and a watcher there keeps
// it). A's engine bids for them exactly once, and the state reaches their
// socket on B; a config lowered on B below the next price stops A's bids,
// raised again resumes them (once); the auction removed on B stops them
// for good. P stays A's throughout.
func TestClusterSignedTokenUserOfAnotherNodeIsBidForByTheOwner(t *testing.T) {
	const ivy = "ivy" // the bidder's name in the token and at the simulator
	s := newStack(t, time.Second, 3, false)
	p := s.lots()[0]
	a := s.node(cluster.Rendezvous(p, []string{"a", "b", "c"}))
	b := s.nodes[0]
	if b == a {
		b = s.nodes[1]
	}

	watcher := s.dial(a)
	watcher.monitor(watchOnly([]int64{p}))
	if o := s.ownersOf([]int64{p}, 10*time.Second)[p]; o != a.name {
		t.Fatalf("lot %d owned by %s, want %s", p, o, a.name)
	}
	t.Logf("lot %d owned by %s; the token user is on %s", p, a.name, b.name)

	token, err := tokens.Mint(tokens.Config{HMACKey: stackJWTKey}, ivy, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := s.dialAs(b, token)
	s.syncCookiesAs(b, token, ivy)
	owned := func() {
		t.Helper()
		if o := s.ownersOf([]int64{p}, 5*time.Second)[p]; o != a.name {
			t.Fatalf("lot %d moved to %s", p, o)
		}
	}
	// bidsSettle waits for ivy's bids at the simulator to number want, then
	// checks for a second more that no other comes.
	bidsSettle := func(want int, what string) {
		t.Helper()
		waitUntil(t, 10*time.Second, what, func() bool { return len(s.bidsOf(p, ivy)) >= want })
		time.Sleep(2 * time.Second)
		if got := s.bidsOf(p, ivy); len(got) != want {
			t.Fatalf("%s: %d bids by %s at the simulator, want %d: %+v", what, len(got), ivy, want, got)
		}
	}

	from := c.mark()
	c.monitor(map[int64]map[string]any{p: {"maxBid": s.lot(p).NextBid + 100, "strategy": "auto", "incrementAmount": 1, "autoBid": true}})
	bidsSettle(1, "the owner's bid for the token user")
	waitUntil(t, 5*time.Second, "ivy to lead", func() bool { return s.lot(p).Leader == ivy })
	c.autoBidState(from, p, 5*time.Second, "the owner's winning state on "+b.name, func(status, _ string) bool { return status == "winning" })
	owned()

	// Lowered on B to the price ivy leads at: a rival's bid takes the lot
	// above it, and A bids no more.
	lead := s.lot(p).CurrentBid
	from = c.mark()
	c.send(map[string]any{"type": "updateConfig", "auctionId": fmt.Sprint(p), "requestId": "lower", "config": map[string]any{"maxBid": lead}})
	time.Sleep(time.Second) // the bucket's watch brings it to A (within 250 ms)
	s.outbid(p)
	c.autoBidState(from, p, 10*time.Second, "max reached on "+b.name, func(status, _ string) bool { return status == "max_reached" })
	bidsSettle(1, "no bid above the lowered maximum")

	// Raised again on B: A bids once more.
	from = c.mark()
	c.send(map[string]any{"type": "updateConfig", "auctionId": fmt.Sprint(p), "requestId": "raise", "config": map[string]any{"maxBid": lead + 100}})
	bidsSettle(2, "the bid under the raised maximum")
	c.autoBidState(from, p, 5*time.Second, "winning again on "+b.name, func(status, _ string) bool { return status == "winning" })

	// Removed on B: a rival's bid draws none from A.
	c.send(map[string]any{"type": "stopMonitoring", "auctionId": fmt.Sprint(p), "requestId": "stop"})
	time.Sleep(time.Second)
	s.outbid(p)
	bidsSettle(2, "no bid after the auction was removed")
	owned()
	s.checkNoRepeatedBidOf(p, ivy)
}

// TestClusterSignedTokenUserIsBidForByTheNextOwner: as above, the bidder
// of a signed token is only on node B and auto-bids on lot P, owned by
// node A; node C, ranked between them for P, has a watcher of P. A is
// SIGKILLed: once C owns P (from the users' bucket it learns of the
// bidder, whom it never saw sign in), a rival's bid draws exactly one bid
// for them, whose state reaches their socket on B.
func TestClusterSignedTokenUserIsBidForByTheNextOwner(t *testing.T) {
	const ivy = "ivy"
	s := newStack(t, time.Second, 3, false)
	p := s.lots()[0]
	names := []string{"a", "b", "c"}
	a := s.node(cluster.Rendezvous(p, names))
	names = slices.DeleteFunc(names, func(n string) bool { return n == a.name })
	c := s.node(cluster.Rendezvous(p, names))
	names = slices.DeleteFunc(names, func(n string) bool { return n == c.name })
	b := s.node(names[0])

	s.dial(a).monitor(watchOnly([]int64{p}))
	if o := s.ownersOf([]int64{p}, 10*time.Second)[p]; o != a.name {
		t.Fatalf("lot %d owned by %s, want %s", p, o, a.name)
	}
	s.dial(c).monitor(watchOnly([]int64{p}))
	token, err := tokens.Mint(tokens.Config{HMACKey: stackJWTKey}, ivy, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	onB := s.dialAs(b, token)
	s.syncCookiesAs(b, token, ivy)
	onB.monitor(map[int64]map[string]any{p: {"maxBid": s.lot(p).NextBid + 100, "strategy": "auto", "incrementAmount": 1, "autoBid": true}})
	waitUntil(t, 10*time.Second, "ivy to lead", func() bool { return s.lot(p).Leader == ivy })
	before := len(s.bidsOf(p, ivy))
	t.Logf("lot %d: owner %s, next %s, the token user on %s; %d bid(s) by %s's owner", p, a.name, c.name, b.name, before, a.name)

	if err := a.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.proc.exited
	killed := time.Now()
	waitUntil(t, 15*time.Second, "node "+c.name+" to own the lot", func() bool {
		owned, twice := s.owners()
		if len(twice) > 0 {
			t.Fatal(strings.Join(twice, "; "))
		}
		return owned[p] == c.name
	})
	t.Logf("%s owns lot %d %v after the kill", c.name, p, time.Since(killed).Round(time.Millisecond))

	from := onB.mark()
	s.outbid(p)
	waitUntil(t, 10*time.Second, "the new owner's bid for the token user", func() bool { return len(s.bidsOf(p, ivy)) > before })
	time.Sleep(2 * time.Second)
	if got := s.bidsOf(p, ivy); len(got) != before+1 {
		t.Fatalf("%d bids by %s at the simulator after the rival's, want one: %+v", len(got)-before, ivy, got)
	}
	waitUntil(t, 5*time.Second, "ivy to lead again", func() bool { return s.lot(p).Leader == ivy })
	onB.autoBidState(from, p, 5*time.Second, "the new owner's winning state on "+b.name, func(status, _ string) bool { return status == "winning" })
	s.checkNoRepeatedBidOf(p, ivy)
}
