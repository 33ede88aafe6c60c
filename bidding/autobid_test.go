package bidding

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
)

func alice(productID int64, cfg AuctionConfig) Watcher {
	return Watcher{User: "alice", AuctionID: auctionID(productID), Config: cfg, Cookies: "sim_user=alice"}
}

// runUntilClosed steps both clocks until the lot is closed and a second
// past it, publishing every few seconds as the feed would.
func (r *rig) runUntilClosed(productID int64, step time.Duration) {
	r.t.Helper()
	for i := 0; ; i++ {
		a := r.lot(productID)
		if a.IsClosed {
			r.advance(time.Second)
			r.publish(productID)
			return
		}
		if i > 10_000 {
			r.t.Fatal("lot never closed")
		}
		r.advance(step)
		if i%8 == 0 {
			r.publish(productID)
		}
	}
}

func TestSnipingBidsOnceInsideTheWindowAndWins(t *testing.T) {
	r := newRig(t, rigOptions{})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid+3)
	price := r.lot(lot.ID).CurrentBid
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(price + 50), Strategy: StrategySniping, AutoBid: true}))
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusWaiting || len(r.bidsSent()) != 0 {
		t.Fatalf("before the window: %+v, %d bids", s, len(r.bidsSent()))
	}
	// Jump to 30 s before the close, then walk in quarter seconds.
	r.advance(r.lot(lot.ID).CloseTime.Add(-30 * time.Second).Sub(r.nellis.Now()))
	r.runUntilClosed(lot.ID, 250*time.Millisecond)

	sent := r.bidsSent()
	if len(sent) != 1 {
		t.Fatalf("sniping sent %d bids, want exactly 1: %+v", len(sent), sent)
	}
	if b := sent[0]; b.user != "alice" || b.amount != price+1 || b.remaining <= 0 || b.remaining > DefaultSnipeWindow {
		t.Errorf("bid %+v: want $%d with 0 < time left <= %s", b, price+1, DefaultSnipeWindow)
	}
	final := r.lot(lot.ID)
	if !final.IsClosed || final.Leader != "alice" {
		t.Errorf("lot %+v: alice did not win", final)
	}
	s := r.state("alice", auctionID(lot.ID))
	if s.Status != StatusEnded || !s.Winning || len(s.Bids) != 1 || s.Bids[0].Result != string(nellis.BidAccepted) || s.Bids[0].Strategy != StrategySniping {
		t.Errorf("state %+v", s)
	}
	if got := r.rep.last("alice", auctionID(lot.ID)); got.Status != StatusEnded {
		t.Errorf("last report %+v", got)
	}
}

func TestSnipingFollowsSoftCloseAndNeverBidsAfterClose(t *testing.T) {
	r := newRig(t, rigOptions{})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	start := r.lot(lot.ID).CurrentBid
	maxBid := start + 10
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(maxBid), Strategy: StrategySniping, AutoBid: true, SnipeSeconds: 5}))
	r.advance(r.lot(lot.ID).CloseTime.Add(-20 * time.Second).Sub(r.nellis.Now()))

	// The rival answers each of alice's snipes at once, extending the
	// close; the third answer is above her maximum.
	answers := []int{start + 4, start + 8, maxBid + 5}
	for i := 0; ; i++ {
		a := r.lot(lot.ID)
		if a.IsClosed {
			break
		}
		if i > 20_000 {
			t.Fatal("lot never closed")
		}
		if a.Leader == "alice" && len(answers) > 0 {
			r.rivalBid(lot.ID, answers[0])
			answers = answers[1:]
		}
		r.advance(250 * time.Millisecond)
	}
	closedAt := r.lot(lot.ID).CloseTime
	for range 3 {
		r.advance(5 * time.Second)
		r.publish(lot.ID)
	}

	sent := r.bidsSent()
	var mine []sentBid
	for _, b := range sent {
		if b.user == "alice" {
			mine = append(mine, b)
		}
	}
	if len(mine) != 3 {
		t.Fatalf("alice bid %d times, want 3 (one per window): %+v", len(mine), mine)
	}
	for _, b := range mine {
		if b.remaining <= 0 || b.remaining > 5*time.Second || b.amount > maxBid {
			t.Errorf("bid %+v outside the 5s window or above $%d", b, maxBid)
		}
		if !b.at.Before(closedAt) {
			t.Errorf("bid %+v after the close at %v", b, closedAt)
		}
	}
	if mine[2].amount != start+9 {
		t.Errorf("third snipe $%d, want $%d", mine[2].amount, start+9)
	}
	s := r.state("alice", auctionID(lot.ID))
	if s.Status != StatusEnded || s.Winning || !s.MaxBidReached {
		t.Errorf("state %+v", s)
	}
	if !r.rep.saw("alice", auctionID(lot.ID), StatusMaxReached, "Maximum bid") {
		t.Error("max reached was not reported")
	}
}

func TestAutoBiddingWarStopsExactlyAtMaxBid(t *testing.T) {
	r := newRig(t, rigOptions{})
	lot := r.lots[0]
	// A rival's proxy maximum far above alice's: each of her bids is
	// outbid at once by Nellis itself.
	r.proxyBid(lot.ID, lot.NextBid+100, "rival")
	first := r.lot(lot.ID).NextBid
	maxBid := first + 8
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(maxBid) + 0.5, Strategy: StrategyAuto, AutoBid: true}))

	sent := r.bidsSent()[1:] // the rival's proxy bid first
	want := []int{first, first + 2, first + 4, first + 6, first + 8}
	if len(sent) != len(want) {
		t.Fatalf("alice bid %+v, want %v", sent, want)
	}
	for i, b := range sent {
		if b.user != "alice" || b.amount != want[i] {
			t.Errorf("bid %d: %+v, want $%d", i, b, want[i])
		}
	}
	// More rival activity never brings a bid above the maximum, nor a
	// second "maximum reached".
	if err := r.sim.EmitBid(lot.ID, r.lot(lot.ID).NextBid+1, "rival2"); err != nil {
		t.Fatal(err)
	}
	r.publish(lot.ID)
	r.advance(time.Minute)
	r.publish(lot.ID)
	if n := len(r.bidsSent()); n != len(want)+1 {
		t.Errorf("%d bids after the maximum was reached", n-len(want)-1)
	}
	s := r.state("alice", auctionID(lot.ID))
	if s.Status != StatusMaxReached || !s.MaxBidReached || s.Winning || len(s.Bids) != len(want) {
		t.Errorf("state %+v", s)
	}
	for _, b := range s.Bids {
		if b.Result != string(nellis.BidOutbid) || b.Strategy != StrategyAuto {
			t.Errorf("history %+v", b)
		}
	}
	r.mu.Lock()
	maxReached := r.maxR
	r.mu.Unlock()
	if maxReached != 1 {
		t.Errorf("MaxReached hook called %d times, want 1", maxReached)
	}

	// Raising the maximum resumes the war.
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(r.lot(lot.ID).NextBid), Strategy: StrategyAuto, AutoBid: true}))
	if n := len(r.bidsSent()); n != len(want)+2 {
		t.Errorf("after raising the maximum: %d bids, want one more", n-len(want)-1)
	}
}

func TestAutoBidAgainstJumpBidderUsesTheFeed(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Buffer: 2}})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}))
	p := r.lot(lot.ID)
	if p.Leader != "alice" || r.bidsSent()[0].amount != lot.NextBid+3 {
		t.Fatalf("first bid: %+v, lot %+v", r.bidsSent(), p)
	}
	// Winning: a feed change at the same price brings no bid.
	r.publish(lot.ID)
	if len(r.bidsSent()) != 1 {
		t.Fatal("bid while winning")
	}
	// A rival's bid above alice's maximum is an outbid.
	r.rivalBid(lot.ID, p.CurrentBid+10)
	sent := r.bidsSent()
	if len(sent) != 2 || sent[1].amount != p.CurrentBid+13 || r.lot(lot.ID).Leader != "alice" {
		t.Errorf("answer to the outbid: %+v", sent)
	}
}

// gate holds every bid until released, to look at the engine meanwhile.
type gate struct {
	Placer
	entered chan struct{}
	release chan struct{}
}

func (g *gate) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Placer.PlaceBid(ctx, productID, amount, cookies)
}

func TestTwoChangesTogetherMakeOneBid(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 10), release: make(chan struct{})}
	r := newRig(t, rigOptions{placer: func(p Placer) Placer { g.Placer = p; return g }})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	r.dir.set(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}))
	r.engine.Refresh(lot.ID)
	<-g.entered // the first look bids

	// Two more changes at once, from two goroutines, while the bid is out.
	if err := r.sim.EmitBid(lot.ID, r.lot(lot.ID).NextBid, "rival2"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.feed.publish(lot.ID, hub.SourceSSE, "")
		}()
	}
	wg.Wait()
	select {
	case <-g.entered:
		t.Fatal("a second bid while one was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusBidding {
		t.Errorf("state while in flight: %+v", s)
	}
	close(g.release)
	r.settle()
	// The first bid was below the price the changes showed: too low. The
	// answer's look then bids once more, at the new price.
	sent := r.bidsSent()
	if len(sent) != 2 || sent[1].amount != r.lot(lot.ID).CurrentBid {
		t.Errorf("bids %+v", sent)
	}
	s := r.state("alice", auctionID(lot.ID))
	if len(s.Bids) != 2 || s.Bids[0].Result != string(nellis.BidTooLow) || s.Bids[1].Result != string(nellis.BidAccepted) || !s.Winning {
		t.Errorf("state %+v", s)
	}
}

func TestExpiredCookiesStopAutoBidding(t *testing.T) {
	r := newRig(t, rigOptions{})
	a, b := r.lots[0], r.lots[1]
	r.rivalBid(a.ID, a.NextBid)
	r.rivalBid(b.ID, b.NextBid)
	expired := func(id int64) Watcher {
		w := alice(id, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true})
		w.Cookies = "sid=expired-session-cookie"
		return w
	}
	r.watch(a.ID, expired(a.ID))
	r.watch(b.ID, expired(b.ID))
	if n := len(r.bidsSent()); n != 1 {
		t.Fatalf("%d bids with refused cookies, want 1 (the one that found out)", n)
	}
	for _, id := range []int64{a.ID, b.ID} {
		s := r.state("alice", auctionID(id))
		if s.Status != StatusError || s.Message != msgAuth {
			t.Errorf("auction %d: %+v", id, s)
		}
		if got := r.rep.last("alice", auctionID(id)); got.Status != StatusError {
			t.Errorf("auction %d: user told %+v", id, got)
		}
	}
	// New changes do not retry with the same cookies.
	r.rivalBid(a.ID, r.lot(a.ID).NextBid+5)
	r.advance(time.Minute)
	if n := len(r.bidsSent()); n != 1 {
		t.Errorf("%d bids after the refusal", n)
	}
	// Fresh cookies resume.
	r.watch(a.ID, alice(a.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}))
	if s := r.state("alice", auctionID(a.ID)); s.Status != StatusWinning || r.lot(a.ID).Leader != "alice" {
		t.Errorf("after new cookies: %+v", s)
	}
}

func TestMissingCookiesAreAnErrorState(t *testing.T) {
	r := newRig(t, rigOptions{})
	lot := r.lots[0]
	w := alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true})
	w.Cookies = ""
	r.publish(lot.ID)
	r.watch(lot.ID, w)
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusError || s.Message != msgNoCookies || len(r.bidsSent()) != 0 {
		t.Errorf("state %+v, %d bids", s, len(r.bidsSent()))
	}
}

func TestDryRunPlacesNothingAndReports(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{DryRun: true}})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}))
	r.publish(lot.ID) // the same change again: the same amount is not decided twice
	want := r.lot(lot.ID).NextBid
	s := r.state("alice", auctionID(lot.ID))
	if len(s.Bids) != 1 || s.Bids[0].Result != resultDryRun || s.Bids[0].Amount != want {
		t.Errorf("history %+v, want one dry run of $%d", s.Bids, want)
	}
	if !r.rep.saw("alice", auctionID(lot.ID), StatusOutbid, "would have bid") {
		t.Error("the dry run was not reported")
	}

	res, err := r.engine.PlaceBid(context.Background(), manualBid(lot.ID, want+5))
	if err != nil || res.Success || res.ErrorType != ErrTypeDryRun || len(res.Data) == 0 {
		t.Errorf("manual dry run: %+v %v", res, err)
	}
	if n := len(r.bidsSent()); n != 0 {
		t.Errorf("dry run sent %d bids", n)
	}
	if st, _ := r.sim.Stats(lot.ID); st.BidRequests != 0 {
		t.Errorf("simulator got %d bid requests", st.BidRequests)
	}
}

// With the gateway's clock 5 s off Nellis's either way, the snipe still
// lands inside a 4 s window: read naively, one clock would bid 9 s before
// the close and the other a second after it.
func TestClockSkewStillSnipesInsideTheWindow(t *testing.T) {
	for _, skew := range []time.Duration{5 * time.Second, -5 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			r := newRig(t, rigOptions{skew: skew})
			lot := r.lots[0]
			r.rivalBid(lot.ID, lot.NextBid)
			// The hub polls: its snapshots' Date headers feed the estimate.
			snaps := TimedSnapshots{Fetcher: r.client, Server: r.server, Clock: r.local}
			for range 6 {
				if _, err := snaps.Snapshot(context.Background(), lot.ID, ""); err != nil {
					t.Fatal(err)
				}
				r.advance(1300 * time.Millisecond)
			}
			if off := r.server.Offset(r.local.Now()); !off.Known || off.Lo > -skew || off.Hi < -skew || off.Width() > time.Second {
				t.Fatalf("offset %+v, want about %s", off, -skew)
			}
			r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategySniping, AutoBid: true, SnipeSeconds: 4}))
			r.advance(r.lot(lot.ID).CloseTime.Add(-15 * time.Second).Sub(r.nellis.Now()))
			r.runUntilClosed(lot.ID, 100*time.Millisecond)

			var mine []sentBid
			for _, b := range r.bidsSent() {
				if b.user == "alice" {
					mine = append(mine, b)
				}
			}
			if len(mine) != 1 || mine[0].remaining <= 0 || mine[0].remaining > 4*time.Second {
				t.Fatalf("bids %+v: want one with 0 < time left <= 4s", mine)
			}
			if r.lot(lot.ID).Leader != "alice" {
				t.Error("alice did not win")
			}
		})
	}
}

func TestRefreshFollowsTheFeedOnlyWhileSomeoneAutoBids(t *testing.T) {
	r := newRig(t, rigOptions{})
	lot := r.lots[0]
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1, Strategy: StrategyAuto, AutoBid: true}))
	if !r.feed.subscribed(lot.ID) {
		t.Fatal("not subscribed")
	}
	r.dir.remove(lot.ID)
	r.engine.Refresh(lot.ID)
	if r.feed.subscribed(lot.ID) {
		t.Error("still subscribed with nobody auto-bidding")
	}
	r.engine.Forget("alice", auctionID(lot.ID))
	if _, ok := r.engine.State("alice", auctionID(lot.ID)); ok {
		t.Error("state kept after Forget")
	}
}

// failFirst answers the first bid itself with a failure, then passes bids on.
type failFirst struct {
	Placer
	first  nellis.BidResult
	called atomic.Int32
}

func (f *failFirst) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error) {
	if f.called.Add(1) == 1 {
		return f.first, nil
	}
	return f.Placer.PlaceBid(ctx, productID, amount, cookies)
}

func TestServerErrorRetriesTheSameAmountOnceAfterAPause(t *testing.T) {
	f := &failFirst{first: nellis.BidResult{Outcome: nellis.BidUpstreamError, Status: 503, Retryable: true, Message: "status 503"}}
	r := newRig(t, rigOptions{placer: func(p Placer) Placer { f.Placer = p; return f }})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	want := r.lot(lot.ID).NextBid
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}))
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusBidding || len(r.bidsSent()) != 0 {
		t.Fatalf("after the 503: %+v", s)
	}
	r.advance(999 * time.Millisecond)
	if len(r.bidsSent()) != 0 {
		t.Fatal("retried before the pause")
	}
	r.advance(time.Millisecond)
	sent := r.bidsSent()
	if len(sent) != 1 || sent[0].amount != want || r.lot(lot.ID).Leader != "alice" {
		t.Errorf("retry: %+v", sent)
	}
}

func TestNoAnswerNeverSendsTheSameAmountAgain(t *testing.T) {
	f := &failFirst{first: nellis.BidResult{Outcome: nellis.BidUpstreamError, Retryable: true, Message: "connection reset"}}
	r := newRig(t, rigOptions{placer: func(p Placer) Placer { f.Placer = p; return f }})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}))
	r.advance(time.Minute)
	r.publish(lot.ID)
	if n := len(r.bidsSent()); n != 0 || f.called.Load() != 1 {
		t.Fatalf("%d bids sent after an unanswered one at the same price", n)
	}
	// The price moves: a new amount is fair game.
	if err := r.sim.EmitBid(lot.ID, r.lot(lot.ID).NextBid, "rival2"); err != nil {
		t.Fatal(err)
	}
	r.publish(lot.ID)
	if sent := r.bidsSent(); len(sent) != 1 || r.lot(lot.ID).Leader != "alice" {
		t.Errorf("after the price moved: %+v", sent)
	}
}

func TestWinningFromTheUsersOwnSnapshot(t *testing.T) {
	r := newRig(t, rigOptions{})
	lot := r.lots[0]
	// Alice bid on the site herself; the engine learns it from a snapshot
	// fetched with her cookies.
	r.proxyBid(lot.ID, lot.NextBid+5, "alice")
	w := alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true})
	w.StateKey = "alice-key"
	r.dir.set(lot.ID, w)
	r.feed.publish(lot.ID, hub.SourcePoll, "alice")
	r.engine.Refresh(lot.ID)
	r.settle()
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusWinning || len(r.bidsSent()) != 1 {
		t.Fatalf("winning by her own snapshot: %+v, %d bids", s, len(r.bidsSent()))
	}
	// A live event's stale user state is not believed; its price is: a
	// rival's jump above her maximum is an outbid.
	if err := r.sim.EmitBid(lot.ID, r.lot(lot.ID).CurrentBid+20, "rival"); err != nil {
		t.Fatal(err)
	}
	r.publish(lot.ID)
	sent := r.bidsSent()
	if len(sent) != 2 || sent[1].user != "alice" || r.lot(lot.ID).Leader != "alice" {
		t.Errorf("after the outbid: %+v", sent)
	}
}

func TestBiddingOffPausesAutoBid(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Off: true}})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}))
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusError || s.Message != msgOff || len(r.bidsSent()) != 0 {
		t.Fatalf("bidding off: %+v", s)
	}
	if err := r.engine.UpdateConfig(Config{}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusWinning || len(r.bidsSent()) != 1 {
		t.Errorf("bidding on again: %+v", s)
	}
	if err := r.engine.UpdateConfig(Config{BidsPerMinute: -1}); err == nil {
		t.Error("invalid config accepted")
	}
}

// holdAnswer sends each bid, then holds its answer until released.
type holdAnswer struct {
	Placer
	answered chan struct{}
	release  chan struct{}
}

func (h *holdAnswer) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error) {
	res, err := h.Placer.PlaceBid(ctx, productID, amount, cookies)
	h.answered <- struct{}{}
	<-h.release
	return res, err
}

// A rival's bid that arrives while the user's bid is in flight outbids the
// bid its answer then reports as leading.
func TestOutbidWhileTheBidIsInFlight(t *testing.T) {
	h := &holdAnswer{answered: make(chan struct{}, 10), release: make(chan struct{})}
	r := newRig(t, rigOptions{placer: func(p Placer) Placer { h.Placer = p; return h }})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	r.dir.set(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}))
	r.engine.Refresh(lot.ID)
	<-h.answered // the bid leads at Nellis; its answer is held
	if err := r.sim.EmitBid(lot.ID, r.lot(lot.ID).CurrentBid+5, "rival2"); err != nil {
		t.Fatal(err)
	}
	r.feed.publish(lot.ID, hub.SourceSSE, "")
	r.waitSeen(lot.ID) // the engine saw the rival's price before the answer
	close(h.release)
	r.settle()
	if a := r.lot(lot.ID); a.Leader != "alice" || len(r.bidsSent()) != 2 {
		t.Errorf("lot %+v after %d bids: the outbid was not answered", a, len(r.bidsSent()))
	}
}

// endedFor answers every bid of one user "auction ended", as Nellis might
// for that user alone (a session it ended, a lot closed for that account),
// and passes the others on.
type endedFor struct {
	Placer
	cookies string
}

func (p endedFor) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error) {
	if cookies == p.cookies {
		return nellis.BidResult{Outcome: nellis.BidEnded, Status: 410, Message: "This auction has ended"}, nil
	}
	return p.Placer.PlaceBid(ctx, productID, amount, cookies)
}

// One user's "ended" answer ends that user's auction only: the lot ends
// for everyone when the feed says it closed.
func TestOneUsersEndedAnswerDoesNotStopAnothersAutoBid(t *testing.T) {
	r := newRig(t, rigOptions{placer: func(p Placer) Placer { return endedFor{p, "sim_user=alice"} }})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	cfg := AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}
	r.watch(lot.ID, alice(lot.ID, cfg))
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusEnded {
		t.Fatalf("alice after her ended answer: %+v", s)
	}
	r.watch(lot.ID, Watcher{User: "bob", AuctionID: auctionID(lot.ID), Config: cfg, Cookies: "sim_user=bob"})
	if s := r.state("bob", auctionID(lot.ID)); s.Status != StatusWinning || r.lot(lot.ID).Leader != "bob" {
		t.Fatalf("bob stopped by alice's answer: %+v, leader %q", s, r.lot(lot.ID).Leader)
	}
	if s := r.state("alice", auctionID(lot.ID)); s.Status != StatusEnded || len(s.Bids) != 1 {
		t.Errorf("alice bid again after her ended answer: %+v", s)
	}

	// The real close, from the feed, ends it for both.
	if err := r.sim.CloseLot(lot.ID); err != nil {
		t.Fatal(err)
	}
	r.publish(lot.ID)
	if s := r.state("bob", auctionID(lot.ID)); s.Status != StatusEnded {
		t.Errorf("bob after the close: %+v", s)
	}
}

// A lot monitored under two ids (058040119 and 58040119, or an id and a
// URL) is one lot: the user winning it under one id is winning under the
// other, and the other never raises the user's own winning bid.
func TestASecondAuctionIDOfTheSameLotIsTheSameLot(t *testing.T) {
	r := newRig(t, rigOptions{})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	padded, plain := "0"+auctionID(lot.ID), auctionID(lot.ID)
	w := alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true})
	w.AuctionID = padded
	r.watch(lot.ID, w)
	if s := r.state("alice", padded); s.Status != StatusWinning || len(r.bidsSent()) != 1 {
		t.Fatalf("first id: %+v, %d bids", s, len(r.bidsSent()))
	}
	// The second id, with a higher maximum.
	w.AuctionID, w.Config.MaxBid = plain, 2000
	r.watch(lot.ID, w)
	r.publish(lot.ID)
	if sent := r.bidsSent(); len(sent) != 1 {
		t.Fatalf("alice bid against herself through the second id: %+v", sent)
	}
	for _, id := range []string{padded, plain} {
		if s := r.state("alice", id); s.Status != StatusWinning || !s.Winning || len(s.Bids) != 1 {
			t.Errorf("id %s: %+v", id, s)
		}
		if got := r.rep.last("alice", id); got.Status != StatusWinning {
			t.Errorf("id %s reported %+v", id, got)
		}
	}
	// Outbid: one bid answers it, not one per id, and never above the
	// lower of the two maximums.
	r.rivalBid(lot.ID, 995)
	if sent := r.bidsSent(); len(sent) != 2 || sent[1].amount > 1000 {
		t.Errorf("after the outbid: %+v, want one more bid of at most $1000", sent)
	}
	// Stopping one id keeps the lot's state for the other.
	r.engine.Forget("alice", padded)
	if _, ok := r.engine.State("alice", padded); ok {
		t.Error("the stopped id still has a state")
	}
	if s := r.state("alice", plain); len(s.Bids) != 2 {
		t.Errorf("the other id lost the lot's history: %+v", s)
	}
}
