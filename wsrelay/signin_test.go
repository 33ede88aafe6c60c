package wsrelay

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nellis-edge/gateway/hub"
)

// listedSeq is the seq of auctionID's state in a listing's auctions, 0
// for none.
func listedSeq(t *testing.T, auctions any, auctionID string) float64 {
	t.Helper()
	list, _ := auctions.([]any)
	for _, e := range list {
		a, _ := e.(map[string]any)
		if a["id"] == auctionID {
			seq, _ := a["seq"].(float64)
			return seq
		}
	}
	t.Fatalf("auction %s not in the listing %v", auctionID, auctions)
	return 0
}

// newSignInFixture is a relay whose sign-ins run the function stored in
// during, once, at the moment a socket has joined its user's sockets and
// not yet been answered (the Authenticated hook).
func newSignInFixture(t *testing.T) (*fixture, *atomic.Pointer[func()]) {
	during := new(atomic.Pointer[func()])
	f := newFixture(t, testConfig(), Options{Hooks: Hooks{Authenticated: func(string) {
		if fn := during.Swap(nil); fn != nil {
			(*fn)()
		}
	}}})
	return f, during
}

// TestSignInAnswersBeforeAnyState: a change fanned out while a socket
// signs in, after it has joined its user's sockets and before its answer
// (the moment the Authenticated hook runs), reaches it after the answer
// and the listing, never before: the extension expects authenticated,
// then monitoredAuctions. The listing already shows that change, so it
// is not sent again.
func TestSignInAnswersBeforeAnyState(t *testing.T) {
	f, during := newSignInFixture(t)
	first := f.login(tokenAlice)
	startMonitoring(first, "8", 10)
	f.feeds.publish(newChange(t, product(8, 11), "e", 1))
	first.expectType("auctionState")

	c := f.connect()
	publish := func() { f.feeds.publish(newChange(t, product(8, 12), "e", 2)) }
	during.Store(&publish)
	c.send(map[string]any{"type": "authenticate", "token": tokenAlice, "requestId": "auth"})
	if m := c.read(); m["type"] != "authenticated" || m["success"] != true {
		t.Fatalf("first reply to the sign-in: %v, want authenticated", m)
	}
	m := c.expectType("monitoredAuctions")
	if seq := listedSeq(t, m["auctions"], "8"); seq != 2 {
		t.Fatalf("listing shows seq %v, want 2 (the change published during the sign-in)", seq)
	}
	c.roundTrip() // the change is not sent again after the listing that shows it
	if during.Load() != nil {
		t.Fatal("the hook did not run")
	}
}

// TestAStateHeldBeforeTheListingReadsItIsDropped: a change fanned out
// to a socket signing in before its listing reads the auction is older
// than what the listing shows when the feed has moved on meanwhile (a
// feed's state may be ahead of what it delivered, as a cluster reader's
// caught-up history is); it is dropped, not sent after the listing.
func TestAStateHeldBeforeTheListingReadsItIsDropped(t *testing.T) {
	f, during := newSignInFixture(t)
	first := f.login(tokenAlice)
	startMonitoring(first, "8", 10)

	c := f.connect()
	moveOn := func() {
		f.feeds.publish(newChange(t, product(8, 12), "e", 2)) // held for c
		f.feeds.mu.Lock()
		f.feeds.states[8] = newChange(t, product(8, 13), "e", 3) // not delivered yet
		f.feeds.mu.Unlock()
	}
	during.Store(&moveOn)
	c.authenticateListing(tokenAlice, func(auctions any) {
		if seq := listedSeq(t, auctions, "8"); seq != 3 {
			t.Fatalf("listing shows seq %v, want 3", seq)
		}
	})
	c.roundTrip() // seq 2 would come before the pong
}

// authenticateListing signs in and hands the listing's auctions to check;
// the two replies must be the first messages.
func (c *client) authenticateListing(token string, check func(auctions any)) {
	c.t.Helper()
	c.send(map[string]any{"type": "authenticate", "token": token, "requestId": "auth"})
	if m := c.read(); m["type"] != "authenticated" || m["success"] != true {
		c.t.Fatalf("first reply to the sign-in: %v, want authenticated", m)
	}
	check(c.expectType("monitoredAuctions")["auctions"])
}

// readingFeeds runs a hook once, the next time State is asked for a
// product: the moment a listing has read the auctions before it and not
// yet been sent.
type readingFeeds struct {
	*fakeFeeds
	mu      sync.Mutex
	product int64
	hook    func()
}

func (r *readingFeeds) onState(productID int64, hook func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.product, r.hook = productID, hook
}

func (r *readingFeeds) State(productID int64) (*hub.Change, bool) {
	r.mu.Lock()
	hook := r.hook
	if productID != r.product {
		hook = nil
	}
	if hook != nil {
		r.hook = nil
	}
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
	return r.fakeFeeds.State(productID)
}

// newReadingFixture is a relay over readingFeeds.
func newReadingFixture(t *testing.T) (*fixture, *readingFeeds) {
	feeds := &readingFeeds{fakeFeeds: newFakeFeeds()}
	f := newFixture(t, testConfig(), Options{Feeds: feeds})
	f.feeds = feeds.fakeFeeds
	return f, feeds
}

// TestSignInListingIsNeverOlderThanAStateSentAfterIt: auction 1's state
// has been read for the listing when its feed publishes a change, before
// the listing is sent (while it reads auction 2). The socket must see
// the listing first and the change after it; before, the change came
// first and the listing then took the price back until the lot's next
// change.
func TestSignInListingIsNeverOlderThanAStateSentAfterIt(t *testing.T) {
	f, feeds := newReadingFixture(t)
	first := f.login(tokenAlice)
	startMonitoring(first, "1", 10)
	startMonitoring(first, "2", 10) // listed after 1
	f.feeds.publish(newChange(t, product(1, 11), "e", 1))
	first.expectType("auctionState")

	c := f.connect()
	feeds.onState(2, func() { f.feeds.publish(newChange(t, product(1, 12), "e", 2)) })
	c.authenticateListing(tokenAlice, func(auctions any) {
		if seq := listedSeq(t, auctions, "1"); seq != 1 {
			t.Fatalf("listing shows seq %v of auction 1, want 1 (read before the change)", seq)
		}
	})
	m := c.expectType("auctionState")
	if a := auctionOf(m); a["id"] != "1" || a["seq"] != float64(2) {
		t.Fatalf("after the listing: %v, want auction 1's change (seq 2)", a)
	}
}

// TestGetMonitoredAuctionsIsNeverOlderThanAStateSentAfterIt: the same
// for the listing a signed-in socket asks for.
func TestGetMonitoredAuctionsIsNeverOlderThanAStateSentAfterIt(t *testing.T) {
	f, feeds := newReadingFixture(t)
	c := f.login(tokenAlice)
	startMonitoring(c, "1", 10)
	startMonitoring(c, "2", 10)
	f.feeds.publish(newChange(t, product(1, 11), "e", 1))
	c.expectType("auctionState")

	feeds.onState(2, func() { f.feeds.publish(newChange(t, product(1, 12), "e", 2)) })
	c.send(map[string]any{"type": "getMonitoredAuctions", "requestId": "list"})
	m := c.read()
	if m["type"] != "response" {
		t.Fatalf("got %v before the listing", m)
	}
	data, _ := json.Marshal(m["data"])
	var d struct{ Auctions any }
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if seq := listedSeq(t, d.Auctions, "1"); seq != 1 {
		t.Fatalf("listing shows seq %v of auction 1, want 1", seq)
	}
	if a := auctionOf(c.expectType("auctionState")); a["id"] != "1" || a["seq"] != float64(2) {
		t.Fatalf("after the listing: %v, want auction 1's change (seq 2)", a)
	}
}

// TestSigningInAsAnotherUserAnswersBeforeTheirStates: a socket of alice's
// signs in again as bob while the lot both monitor changes; the change
// reaches it as bob's state, after the answer and bob's listing, and
// none of alice's follows.
func TestSigningInAsAnotherUserAnswersBeforeTheirStates(t *testing.T) {
	f, during := newSignInFixture(t)
	bob := f.login(tokenBob)
	startMonitoring(bob, "8", 20)
	c := f.login(tokenAlice)
	startMonitoring(c, "8", 10)
	f.login(tokenAlice) // alice keeps a socket: her states still flow

	publish := func() { f.feeds.publish(newChange(t, product(8, 12), "e", 2)) }
	during.Store(&publish)
	c.authenticateListing(tokenBob, func(auctions any) {
		if seq := listedSeq(t, auctions, "8"); seq != 2 {
			t.Fatalf("listing shows seq %v, want 2", seq)
		}
	})
	f.feeds.publish(newChange(t, product(8, 13), "e", 3))
	a := auctionOf(c.expectType("auctionState"))
	if cfg := a["config"].(map[string]any); a["seq"] != float64(3) || cfg["maxBid"] != float64(20) {
		t.Fatalf("after the listing: %v, want bob's auction at seq 3", a)
	}
	c.roundTrip()
}
