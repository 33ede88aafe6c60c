package bidding

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/nellissim"
	"github.com/nellis-edge/gateway/users"
)

// flagOwner is a node's ownership of every product, switched by the test.
type flagOwner struct{ owns atomic.Bool }

func owner(owns bool) *flagOwner {
	o := &flagOwner{}
	o.owns.Store(owns)
	return o
}

func (o *flagOwner) Owns(int64) bool { return o.owns.Load() }

// dyingLedger is a node's way to the shared ledger, cut when the node
// dies: nothing it writes after arrives.
type dyingLedger struct {
	users.BidLedger
	dead atomic.Bool
}

func (l *dyingLedger) CommitBids(ctx context.Context, user string, productID int64, rec users.LotBids, rev uint64) (uint64, error) {
	if l.dead.Load() {
		return 0, errors.New("the node is gone")
	}
	return l.BidLedger.CommitBids(ctx, user, productID, rec, rev)
}

// lostAnswer sends each bid to Nellis, then never hears back: the node
// stops before the answer arrives.
type lostAnswer struct {
	Placer
	sent chan struct{}
}

func (p *lostAnswer) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error) {
	res, err := p.Placer.PlaceBid(context.Background(), productID, amount, cookies)
	p.sent <- struct{}{}
	<-ctx.Done()
	return res, err
}

// unanswered reaches Nellis but reports no answer (a timeout after the
// bid left), so the amount stays tried.
type unanswered struct{ Placer }

func (p unanswered) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error) {
	_, _ = p.Placer.PlaceBid(ctx, productID, amount, cookies)
	return nellis.BidResult{Outcome: nellis.BidUpstreamError, Retryable: true, Message: "no answer"}, nil
}

// engineOn is another engine on the rig's feed, users and Nellis: another
// run of the gateway, or another node.
func (r *rig) engineOn(cfg Config, adjust func(*Options)) *Engine {
	r.t.Helper()
	opts := Options{Placer: r.client, Feed: r.feed, Directory: r.dir, Reporter: r.rep, Clock: r.local, ServerClock: r.server}
	adjust(&opts)
	e, err := New(cfg, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(e.Close)
	return e
}

// A bid the gateway sent without hearing back is never sent again after
// a restart: the tried amounts are persisted (single node).
func TestTriedAmountsSurviveARestart(t *testing.T) {
	ledger := users.NewStorageLedger(memstorage.New())
	r := newRigWith(t, rigOptions{placer: func(p Placer) Placer { return unanswered{p} }}, func(o *Options) { o.Ledger = ledger })
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid+3)
	next := r.lot(lot.ID).NextBid
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(next + 50), Strategy: StrategyAuto, AutoBid: true}))
	if sent := r.bidsSent(); len(sent) != 1 || sent[0].amount != next {
		t.Fatalf("before the restart: %+v, want one bid of %d", sent, next)
	}

	r.engine.Close()
	r.engine = r.engineOn(Config{}, func(o *Options) { o.Ledger = ledger; o.Placer = unanswered{r.client} })
	r.engine.Refresh(lot.ID) // the feed's state: the price before the bid
	r.settle()
	if sent := r.bidsSent(); len(sent) != 1 {
		t.Fatalf("after the restart: %+v, the same amount sent again", sent)
	}
	s := r.state("alice", auctionID(lot.ID))
	if s.Status != StatusOutbid || len(s.Bids) != 1 || s.Bids[0].Amount != next {
		t.Errorf("state after the restart %+v", s)
	}
}

// The rate window and the history of manual bids survive a restart.
func TestRateWindowAndHistorySurviveARestart(t *testing.T) {
	ledger := users.NewStorageLedger(memstorage.New())
	r := newRigWith(t, rigOptions{cfg: Config{BidsPerMinute: 2}}, func(o *Options) { o.Ledger = ledger })
	lot := r.lots[0]
	ctx := context.Background()
	for i := range 2 {
		if res, _ := r.engine.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid+i)); !res.Success {
			t.Fatalf("bid %d: %+v", i, res)
		}
	}
	r.engine.Close()
	r.engine = r.engineOn(Config{BidsPerMinute: 2}, func(o *Options) { o.Ledger = ledger })
	res, _ := r.engine.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid+5))
	if res.ErrorType != ErrTypeRateLimited || !res.Retryable {
		t.Fatalf("third bid within the minute after a restart: %+v", res)
	}
	if s := r.state("alice", auctionID(lot.ID)); len(s.Bids) != 2 || s.Bids[1].Amount != lot.NextBid+1 {
		t.Fatalf("history after the restart: %+v", s.Bids)
	}
	if len(r.bidsSent()) != 2 {
		t.Fatalf("Nellis saw %d bids", len(r.bidsSent()))
	}
}

// handover is a lot followed by two engines sharing one ledger: a (the
// rig's engine) owns it, b waits to take over. Alice auto-bids on it up
// to next+50, next being the lot's next bid after a rival's.
type handover struct {
	r              *rig
	b              *Engine
	ledgerA        *dyingLedger
	ownerA, ownerB *flagOwner
	lot            nellissim.Auction
	next           int
}

func newHandover(t *testing.T, o rigOptions) *handover {
	t.Helper()
	shared := users.NewStorageLedger(memstorage.New())
	h := &handover{ledgerA: &dyingLedger{BidLedger: shared}, ownerA: owner(true), ownerB: owner(false)}
	h.r = newRigWith(t, o, func(o *Options) { o.Ledger, o.Owner, o.Node = h.ledgerA, h.ownerA, "a" })
	h.b = h.r.engineOn(Config{}, func(o *Options) { o.Ledger, o.Owner, o.Node = shared, h.ownerB, "b" })
	h.lot = h.r.lots[0]
	h.r.rivalBid(h.lot.ID, h.lot.NextBid+3)
	h.next = h.r.lot(h.lot.ID).NextBid
	w := alice(h.lot.ID, AuctionConfig{MaxBid: float64(h.next + 50), Strategy: StrategyAuto, AutoBid: true})
	w.StateKey = "alice-key"
	h.r.dir.set(h.lot.ID, w)
	h.b.Refresh(h.lot.ID) // follows the lot, but does not own it
	h.r.engine.Refresh(h.lot.ID)
	return h
}

// aDies ends a as a killed node ends: its connection is gone, its lease
// runs out, b takes over.
func (h *handover) aDies() {
	h.ledgerA.dead.Store(true)
	h.ownerA.owns.Store(false)
	h.ownerB.owns.Store(true)
	h.r.engine.Close()
	h.r.engine = h.b
	h.r.advance(ownerRecheck)
}

// A node records its bid, sends it, and dies before the answer: the next
// owner counts the amount as tried, and bids again only once a snapshot
// fetched with the user's cookies shows the lot as it is. Nellis sees the
// user's amount once.
func TestUnansweredIntentCountsAsTriedAtTheNextOwner(t *testing.T) {
	lostA := &lostAnswer{sent: make(chan struct{}, 1)}
	h := newHandover(t, rigOptions{placer: func(p Placer) Placer { lostA.Placer = p; return lostA }})
	r, lot, next := h.r, h.lot, h.next
	select {
	case <-lostA.sent:
	case <-time.After(5 * time.Second):
		t.Fatal("a never sent its bid")
	}
	h.aDies()

	// The price b knows is from before a's bid: a's amount is next.
	if sent := r.bidsSent(); len(sent) != 1 {
		t.Fatalf("bids %+v: b repeated a's amount", sent)
	}
	s := r.state("alice", auctionID(lot.ID))
	if s.Status != StatusBidding || len(s.Bids) != 1 || s.Bids[0].Result != resultUnknown || s.Bids[0].Amount != next {
		t.Fatalf("b's state %+v", s)
	}
	// A live event shows a's bid leading; it says nothing of whose it is,
	// so b does not bid against it.
	r.publish(lot.ID)
	if sent := r.bidsSent(); len(sent) != 1 {
		t.Fatalf("bids %+v after a live event: b bid before a fresh snapshot", sent)
	}
	// A snapshot with alice's cookies says she leads: nothing to do.
	r.feed.publish(lot.ID, hub.SourcePoll, "alice")
	r.settle()
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusWinning {
		t.Fatalf("after a fresh snapshot: %+v", s)
	}
	// A rival outbids her: b bids, a new amount.
	r.rivalBid(lot.ID, r.lot(lot.ID).NextBid)
	sent := r.bidsSent()
	seen := make(map[int]int)
	for _, bid := range sent {
		if bid.user == "alice" {
			if seen[bid.amount]++; seen[bid.amount] > 1 {
				t.Fatalf("alice bid %d twice: %+v", bid.amount, sent)
			}
		}
	}
	if len(sent) != 2 || sent[1].user != "alice" {
		t.Fatalf("bids at Nellis %+v: want a's, then b's answer to the rival", sent)
	}
}

// An owner that stalls past its lease, while another node took the lot
// over and bid, finds its late bid refused by the compare-and-set: it is
// never sent.
func TestStalledOwnersLateBidIsRefused(t *testing.T) {
	shared := users.NewStorageLedger(memstorage.New())
	var conflicts atomic.Int32
	ownerA, ownerB := owner(true), owner(false)
	r := newRigWith(t, rigOptions{}, func(o *Options) {
		o.Ledger, o.Owner, o.Node = shared, ownerA, "a"
		o.Hooks.IntentConflict = func(string) { conflicts.Add(1) }
	})
	b := r.engineOn(Config{}, func(o *Options) { o.Ledger, o.Owner, o.Node = shared, ownerB, "b" })
	lot := r.lots[0]
	ctx := context.Background()
	if res, _ := r.engine.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid)); !res.Success {
		t.Fatalf("a's bid as owner: %+v", res)
	}
	// a stalls; its lease runs out and b takes the lot and bids.
	ownerB.owns.Store(true)
	if res, _ := b.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid+10)); !res.Success {
		t.Fatalf("b's bid as the new owner: %+v", res)
	}
	// a wakes, still believing it owns the lot, and bids late.
	res, _ := r.engine.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid+20))
	if res.Success || res.ErrorType != ErrTypeNoOwner || !res.Retryable {
		t.Fatalf("a's late bid: %+v, want a retryable NO_OWNER", res)
	}
	if sent := r.bidsSent(); len(sent) != 2 || sent[1].amount != lot.NextBid+10 {
		t.Fatalf("Nellis saw %+v: a's late bid was sent", sent)
	}
	if conflicts.Load() != 1 {
		t.Fatalf("%d intent conflicts, want 1", conflicts.Load())
	}
}

// A node that does not own the lot hands a manual bid to the owner; with
// no owner the bid gets a retryable error.
func TestManualBidGoesToTheOwner(t *testing.T) {
	fw := &fakeForwarder{}
	r := newRigWith(t, rigOptions{}, func(o *Options) { o.Owner, o.Forwarder = owner(false), fw })
	lot := r.lots[0]
	res, _ := r.engine.PlaceBid(context.Background(), manualBid(lot.ID, lot.NextBid))
	if !res.Success || len(fw.bids) != 1 || fw.bids[0].Amount != float64(lot.NextBid) {
		t.Fatalf("forwarded: %+v, %+v", res, fw.bids)
	}
	fw.err = users.ErrNoOwner
	res, _ = r.engine.PlaceBid(context.Background(), manualBid(lot.ID, lot.NextBid))
	if res.Success || res.ErrorType != ErrTypeNoOwner || !res.Retryable {
		t.Fatalf("without an owner: %+v", res)
	}
	fw.err = errors.New("timeout waiting for the owner")
	if res, _ = r.engine.PlaceBid(context.Background(), manualBid(lot.ID, lot.NextBid)); res.ErrorType != ErrTypeNoAnswer || res.Retryable {
		t.Fatalf("an owner that took the bid and did not answer: %+v", res)
	}
	if res, _ = r.engine.PlaceOwnBid(context.Background(), manualBid(lot.ID, lot.NextBid)); res.ErrorType != ErrTypeNoOwner {
		t.Fatalf("a forwarded bid on a lot this node does not own: %+v", res)
	}
	if len(r.bidsSent()) != 0 {
		t.Fatalf("a node that does not own the lot sent %+v", r.bidsSent())
	}
}

type fakeForwarder struct {
	mu   sync.Mutex
	bids []users.Bid
	err  error
}

func (f *fakeForwarder) Forward(_ context.Context, b users.Bid) (users.BidResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return users.BidResult{}, f.err
	}
	f.bids = append(f.bids, b)
	return users.BidResult{Success: true}, nil
}

// The owner's bid is accepted and leads; the owner dies and the next owner
// knows the lot only from live changes, which say nothing of whose bid
// leads. From the lot's record it knows the user's own bid leads: it does
// not raise it; a rival's bid above it draws one bid.
func TestAcceptedBidLeadsAtTheNextOwner(t *testing.T) {
	h := newHandover(t, rigOptions{})
	r, lot, next := h.r, h.lot, h.next
	r.settle()
	if sent := r.bidsSent(); len(sent) != 1 || sent[0].amount != next {
		t.Fatalf("a's bids %+v, want one of %d", sent, next)
	}
	r.publish(lot.ID) // the live event of a's bid, which b reads too

	h.aDies()
	r.publish(lot.ID)
	r.settle()
	if sent := r.bidsSent(); len(sent) != 1 {
		t.Fatalf("bids %+v: b raised alice's own leading bid", sent)
	}
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusWinning {
		t.Fatalf("b's state %+v, want winning", s)
	}
	r.rivalBid(lot.ID, r.lot(lot.ID).NextBid)
	r.settle()
	if sent := r.bidsSent(); len(sent) != 2 || sent[1].user != "alice" || sent[1].amount == next {
		t.Fatalf("bids at Nellis %+v: want a's, then b's one answer to the rival", sent)
	}
}

// A new owner whose read of the lot's record was overtaken by the old
// owner's late answer refuses the user's bid (the compare-and-set that
// fences a stalled owner), saying what happened and what to do, naming
// no cookie; the user's next bid goes out.
func TestBidOnARecordJustChangedSaysSo(t *testing.T) {
	shared := users.NewStorageLedger(memstorage.New())
	r := newRigWith(t, rigOptions{}, func(o *Options) { o.Ledger, o.Owner, o.Node = shared, owner(true), "b" })
	lot := r.lots[0]
	ctx := context.Background()
	if res, _ := r.engine.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid)); !res.Success {
		t.Fatalf("b's bid as the new owner: %+v", res)
	}
	// The old owner's answer to a bid it sent before stalling lands on
	// the record, as its commitAnswer merges it.
	rec, rev, err := shared.LoadBids(ctx, "alice", lot.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.Tried = append(rec.Tried, lot.NextBid+5)
	if _, err := shared.CommitBids(ctx, "alice", lot.ID, rec, rev); err != nil {
		t.Fatal(err)
	}
	bid := manualBid(lot.ID, lot.NextBid+10)
	res, _ := r.engine.PlaceBid(ctx, bid)
	if res.Success || res.ErrorType != ErrTypeNoOwner || !res.Retryable {
		t.Fatalf("a bid on a record changed since read: %+v, want a retryable refusal", res)
	}
	for _, want := range []string{"not sent", "another gateway changed your bid record", "bid again"} {
		if !strings.Contains(res.Error, want) {
			t.Errorf("refusal %q does not say %q", res.Error, want)
		}
	}
	if strings.Contains(res.Error, "handover is under way") || strings.Contains(res.Error, bid.Cookies) ||
		strings.Contains(res.Error, "sim_user") {
		t.Errorf("refusal %q blames a handover or names the cookies", res.Error)
	}
	if sent := r.bidsSent(); len(sent) != 1 {
		t.Fatalf("Nellis saw %+v: the refused bid was sent", sent)
	}
	if res, _ := r.engine.PlaceBid(ctx, bid); !res.Success {
		t.Fatalf("bidding again after reading the record: %+v", res)
	}
}
