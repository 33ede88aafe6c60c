package clusterusers

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/bidding"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/users"
)

// The bids side of the cluster over a real bucket: two engines, each on
// its own NATS connection, one lot, one fake Nellis that counts what
// reaches it.

// nellisBids is a fake Nellis: it records every bid and, while hold is
// set, keeps the answer back until the caller gives up.
type nellisBids struct {
	mu   sync.Mutex
	bids []string // user:amount
	hold atomic.Bool
	sent chan struct{}
}

func (n *nellisBids) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error) {
	n.mu.Lock()
	n.bids = append(n.bids, fmt.Sprintf("%s:%d", cookies, amount))
	n.mu.Unlock()
	select {
	case n.sent <- struct{}{}:
	default:
	}
	if n.hold.Load() {
		<-ctx.Done()
	}
	return nellis.BidResult{Outcome: nellis.BidAccepted, Status: 200}, nil
}

func (n *nellisBids) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.bids...)
}

// lotFeed is one lot's feed, shared by both nodes' engines.
type lotFeed struct {
	mu   sync.Mutex
	seq  uint64
	last *hub.Change
	subs map[int]hub.Subscriber
	next int
}

func (f *lotFeed) Subscribe(_ int64, s hub.Subscriber) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = make(map[int]hub.Subscriber)
	}
	k := f.next
	f.next++
	f.subs[k] = s
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, k)
	}
}

func (f *lotFeed) State(int64) (*hub.Change, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.last != nil
}

// publish delivers the lot at price; user, when set, is a snapshot
// fetched with alice's cookies saying whether she leads.
func (f *lotFeed) publish(price float64, source hub.Source, user *hub.UserState) {
	f.mu.Lock()
	f.seq++
	c := &hub.Change{ProductID: lotID, Epoch: "e", Seq: f.seq, Source: source, ReceivedAt: time.Now(), User: user,
		Product: nellis.Product{ID: lotID, CurrentBid: price, NextBid: price + 1, MarketStatus: "open", CloseTime: time.Now().Add(time.Hour)}}
	f.last = c
	subs := make([]hub.Subscriber, 0, len(f.subs))
	for _, s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		s.Deliver(c)
	}
}

const lotID = 4242

type aliceBids struct{}

func (aliceBids) AutoBidders(int64) []bidding.Watcher {
	return []bidding.Watcher{{User: "alice", AuctionID: "4242", Cookies: "alice", StateKey: "alice-key",
		Config: users.AuctionConfig{MaxBid: 100, IncrementAmount: 1, Strategy: users.StrategyAuto, AutoBid: true}}}
}

type ownsFlag struct{ atomic.Bool }

func (o *ownsFlag) Owns(int64) bool { return o.Load() }

// clusterNode is one node's engine on its own connection to the bucket.
type clusterNode struct {
	engine *bidding.Engine
	owner  *ownsFlag
	close  func()
}

func newClusterNode(t *testing.T, n *natsServer, name string, feed *lotFeed, placer bidding.Placer, owns bool) *clusterNode {
	t.Helper()
	nc, js := n.connect()
	s, err := Open(testCtx(t), js, Options{Prefix: "t", Key: func() []byte { return testKey }})
	if err != nil {
		t.Fatal(err)
	}
	cn := &clusterNode{owner: &ownsFlag{}}
	cn.owner.Store(owns)
	cn.engine, err = bidding.New(bidding.Config{}, bidding.Options{
		Placer: placer, Feed: feed, Directory: aliceBids{},
		Ledger: NewLedger(s.KeyValue()), Owner: cn.owner, Node: name,
	})
	if err != nil {
		t.Fatal(err)
	}
	cn.close = func() { nc.Close() }
	t.Cleanup(cn.engine.Close)
	return cn
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A records its bid in the bucket, sends it, and its node dies (its NATS
// connection gone) before the answer: B, the next owner, counts the
// amount as tried and waits for a snapshot with alice's cookies; Nellis
// sees alice's amount once.
func TestIntentOfADeadNodeCountsAsTriedOverNATS(t *testing.T) {
	n := startNATS(t)
	feed := &lotFeed{}
	feed.publish(10, hub.SourcePoll, nil)
	held := &nellisBids{sent: make(chan struct{}, 1)}
	held.hold.Store(true)
	a := newClusterNode(t, n, "a", feed, held, true)
	live := &nellisBids{sent: make(chan struct{}, 1)}
	b := newClusterNode(t, n, "b", feed, live, false)
	b.engine.Refresh(lotID)
	a.engine.Refresh(lotID)
	select {
	case <-held.sent:
	case <-time.After(5 * time.Second):
		t.Fatal("a never bid")
	}
	// a dies: no answer can be recorded any more, its lease runs out.
	a.owner.Store(false)
	a.close()
	a.engine.Close()
	b.owner.Store(true)
	waitFor(t, "b reading the lot's record", func() bool {
		s, ok := b.engine.State("alice", "4242")
		return ok && len(s.Bids) == 1 && s.Bids[0].Result == "unknown"
	})
	feed.publish(11, hub.SourceSSE, nil) // a's bid leads; a live event does not say whose
	time.Sleep(100 * time.Millisecond)
	if got := live.all(); len(got) != 0 {
		t.Fatalf("b bid %v before a fresh snapshot", got)
	}
	feed.publish(11, hub.SourcePoll, &hub.UserState{Owner: "alice-key", IsWinning: true})
	waitFor(t, "b seeing alice lead", func() bool {
		s, _ := b.engine.State("alice", "4242")
		return s.Status == bidding.StatusWinning
	})
	feed.publish(15, hub.SourcePoll, &hub.UserState{Owner: "alice-key", IsWinning: false})
	select {
	case <-live.sent:
	case <-time.After(5 * time.Second):
		t.Fatal("b never answered the rival")
	}
	if got, want := append(held.all(), live.all()...), []string{"alice:11", "alice:16"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Nellis saw %v, want %v", got, want)
	}
}

// An owner that stalled past its lease while the next owner bid finds its
// late bid refused by the bucket's compare-and-set.
func TestStalledOwnersLateBidRefusedOverNATS(t *testing.T) {
	n := startNATS(t)
	feed := &lotFeed{}
	nb := &nellisBids{sent: make(chan struct{}, 3)}
	a := newClusterNode(t, n, "a", feed, nb, true)
	b := newClusterNode(t, n, "b", feed, nb, false)
	ctx := testCtx(t)
	bid := func(e *bidding.Engine, amount float64) users.BidResult {
		res, _ := e.PlaceBid(ctx, users.Bid{User: "alice", AuctionID: "4242", ProductID: lotID, Amount: amount, Cookies: "alice"})
		return res
	}
	if res := bid(a.engine, 20); !res.Success {
		t.Fatalf("a's bid as owner: %+v", res)
	}
	b.owner.Store(true) // a stalls; b takes over
	if res := bid(b.engine, 30); !res.Success {
		t.Fatalf("b's bid as the new owner: %+v", res)
	}
	if res := bid(a.engine, 40); res.Success || res.ErrorType != bidding.ErrTypeNoOwner || !res.Retryable {
		t.Fatalf("a's late bid: %+v", res)
	}
	if got := fmt.Sprint(nb.all()); got != "[alice:20 alice:30]" {
		t.Fatalf("Nellis saw %s", got)
	}
}
