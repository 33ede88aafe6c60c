package bidding

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/wsrelay"
)

func manualBid(productID int64, amount int) wsrelay.Bid {
	return wsrelay.Bid{User: "alice", AuctionID: auctionID(productID), ProductID: productID, Amount: float64(amount), Cookies: "sim_user=alice"}
}

func TestManualBidsAreClassified(t *testing.T) {
	r := newRig(t, rigOptions{})
	lot := r.lots[0]
	ctx := context.Background()

	res, _ := r.engine.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid))
	if !res.Success || res.Error != "" || len(res.Data) == 0 {
		t.Errorf("accepted bid: %+v", res)
	}
	r.proxyBid(lot.ID, lot.NextBid+50, "rival")
	res, _ = r.engine.PlaceBid(ctx, manualBid(lot.ID, r.lot(lot.ID).NextBid))
	if res.Success || res.ErrorType != "OUTBID" || !strings.Contains(res.Error, "higher maximum bid") || res.Retryable {
		t.Errorf("outbid: %+v", res)
	}
	res, _ = r.engine.PlaceBid(ctx, manualBid(lot.ID, 2))
	if res.Success || res.ErrorType != "BID_TOO_LOW" || res.Retryable {
		t.Errorf("too low: %+v", res)
	}
	bid := manualBid(lot.ID, lot.NextBid+200)
	bid.Cookies = "sid=gone"
	res, _ = r.engine.PlaceBid(ctx, bid)
	if res.ErrorType != "AUTHENTICATION_ERROR" {
		t.Errorf("expired cookies: %+v", res)
	}
	if err := r.sim.CloseLot(lot.ID); err != nil {
		t.Fatal(err)
	}
	res, _ = r.engine.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid+300))
	if res.ErrorType != "AUCTION_ENDED" {
		t.Errorf("ended: %+v", res)
	}
	s := r.state("alice", auctionID(lot.ID))
	if len(s.Bids) != 5 || s.Bids[0].Strategy != StrategyManual || s.Bids[0].Amount != lot.NextBid {
		t.Errorf("history %+v", s.Bids)
	}
}

func TestManualBidRefusals(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{BidsPerMinute: 2}})
	lot := r.lots[0]
	ctx := context.Background()
	check := func(name string, b wsrelay.Bid, errorType string, retryable bool) {
		t.Helper()
		res, err := r.engine.PlaceBid(ctx, b)
		if err != nil || res.Success || res.ErrorType != errorType || res.Retryable != retryable || res.Error == "" {
			t.Errorf("%s: %+v %v, want %s", name, res, err, errorType)
		}
		if strings.Contains(res.Error, "sim_user") {
			t.Errorf("%s: cookies in %q", name, res.Error)
		}
	}
	fraction := manualBid(lot.ID, 10)
	fraction.Amount = 10.5
	check("fraction", fraction, ErrTypeInvalidAmount, false)
	check("zero", manualBid(lot.ID, 0), ErrTypeInvalidAmount, false)
	noCookies := manualBid(lot.ID, 10)
	noCookies.Cookies = ""
	check("no cookies", noCookies, ErrTypeNoCookies, false)

	for i := range 2 {
		if res, _ := r.engine.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid+i)); !res.Success {
			t.Fatalf("bid %d: %+v", i, res)
		}
	}
	check("third bid in a minute", manualBid(lot.ID, lot.NextBid+5), ErrTypeRateLimited, true)
	r.advance(time.Minute)
	if res, _ := r.engine.PlaceBid(ctx, manualBid(lot.ID, lot.NextBid+5)); !res.Success {
		t.Errorf("a minute later: %+v", res)
	}
	if n := len(r.bidsSent()); n != 3 {
		t.Errorf("%d bids sent, want 3", n)
	}

	if err := r.engine.UpdateConfig(Config{Off: true}); err != nil {
		t.Fatal(err)
	}
	check("bidding off", manualBid(lot.ID, lot.NextBid+9), ErrTypeDisabled, false)
}

func TestOneManualBidInFlightPerAuction(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 10), release: make(chan struct{})}
	r := newRig(t, rigOptions{placer: func(p Placer) Placer { g.Placer = p; return g }})
	lot := r.lots[0]
	done := make(chan wsrelay.BidResult)
	go func() {
		res, _ := r.engine.PlaceBid(context.Background(), manualBid(lot.ID, lot.NextBid))
		done <- res
	}()
	<-g.entered
	res, _ := r.engine.PlaceBid(context.Background(), manualBid(lot.ID, lot.NextBid+1))
	if res.ErrorType != ErrTypeInFlight || !res.Retryable {
		t.Errorf("second bid while one is out: %+v", res)
	}
	other := manualBid(r.lots[1].ID, r.lots[1].NextBid)
	close(g.release)
	if res, _ := r.engine.PlaceBid(context.Background(), other); !res.Success {
		t.Errorf("another auction is independent: %+v", res)
	}
	if res := <-done; !res.Success {
		t.Errorf("first bid: %+v", res)
	}
}

// A bid on a lot the user does not monitor (by product id, as the old
// backend took them) holds the lot's rules like any other, shows no state
// under an id the user does not monitor, and is forgotten once its rules
// no longer need it, rather than kept for every lot ever bid on.
func TestUnmonitoredBidKeepsTheLotsRulesAndIsForgotten(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 10), release: make(chan struct{})}
	r := newRig(t, rigOptions{cfg: Config{BidsPerMinute: 2}, placer: func(p Placer) Placer { g.Placer = p; return g }})
	lot := r.lots[0]
	ctx := context.Background()
	loose := func(amount int) wsrelay.Bid {
		b := manualBid(lot.ID, amount)
		b.Unmonitored = true
		return b
	}
	done := make(chan wsrelay.BidResult)
	go func() {
		res, _ := r.engine.PlaceBid(ctx, loose(lot.NextBid))
		done <- res
	}()
	<-g.entered
	if res, _ := r.engine.PlaceBid(ctx, loose(lot.NextBid+1)); res.ErrorType != ErrTypeInFlight {
		t.Errorf("second bid while one is out: %+v", res)
	}
	close(g.release)
	if res := <-done; !res.Success || len(res.Data) == 0 {
		t.Fatalf("unmonitored bid: %+v", res)
	}
	if res, _ := r.engine.PlaceBid(ctx, loose(lot.NextBid+10)); !res.Success {
		t.Errorf("second unmonitored bid: %+v", res)
	}
	if res, _ := r.engine.PlaceBid(ctx, loose(lot.NextBid+20)); res.ErrorType != ErrTypeRateLimited {
		t.Errorf("third bid in a minute: %+v", res)
	}
	if sent := r.bidsSent(); len(sent) != 2 || sent[0].user != "alice" || sent[1].amount != lot.NextBid+10 {
		t.Errorf("bids sent %+v", sent)
	}
	if s, ok := r.engine.State("alice", auctionID(lot.ID)); ok {
		t.Errorf("a state under an auction id alice does not monitor: %+v", s)
	}
	r.rep.mu.Lock()
	reported := len(r.rep.states)
	r.rep.mu.Unlock()
	if reported != 0 {
		t.Errorf("%d states reported for a lot alice does not monitor", reported)
	}

	// A minute on, the next unmonitored bid (on another lot) drops the
	// first lot's state: nothing of it is needed any more.
	r.advance(time.Minute)
	other := r.lots[1]
	b := manualBid(other.ID, other.NextBid)
	b.Unmonitored = true
	if res, _ := r.engine.PlaceBid(ctx, b); !res.Success {
		t.Errorf("bid on another lot: %+v", res)
	}
	r.engine.mu.Lock()
	_, kept := r.engine.states[stateKey{"alice", lot.ID}]
	n := len(r.engine.states)
	r.engine.mu.Unlock()
	if kept || n != 1 {
		t.Errorf("the first lot's state kept (%v), %d states", kept, n)
	}
}

// A win from a bid on a lot the user did not monitor is known to the
// auto-bid the user then starts on it: the engine does not bid against it.
func TestAutoBidStartedAfterAnUnmonitoredWinDoesNotRaiseIt(t *testing.T) {
	r := newRig(t, rigOptions{})
	lot := r.lots[0]
	b := manualBid(lot.ID, lot.NextBid)
	b.Unmonitored = true
	if res, _ := r.engine.PlaceBid(context.Background(), b); !res.Success {
		t.Fatalf("unmonitored bid: %+v", res)
	}
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(lot.NextBid + 50), Strategy: StrategyAuto, AutoBid: true}))
	r.publish(lot.ID)
	r.settle()
	if sent := r.bidsSent(); len(sent) != 1 {
		t.Errorf("%d bids sent, want alice's one: %+v", len(sent), sent)
	}
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusWinning || len(s.Bids) != 1 {
		t.Errorf("state %+v", s)
	}
}
