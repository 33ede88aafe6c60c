package bidding

import (
	"context"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
)

// gatedDirectory holds one AutoBidders call, armed by the test, after it
// read the watchers: a look in progress with the list of that moment.
type gatedDirectory struct {
	Directory
	armed   chan struct{} // a token: the next call takes it and waits
	entered chan struct{}
	release chan struct{}
}

func newGatedDirectory(d Directory) *gatedDirectory {
	return &gatedDirectory{Directory: d, armed: make(chan struct{}, 1), entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedDirectory) AutoBidders(productID int64) []Watcher {
	list := g.Directory.AutoBidders(productID)
	select {
	case <-g.armed:
		close(g.entered)
		<-g.release
	default:
	}
	return list
}

// removeUser drops a user's watchers of a product.
func (d *fakeDirectory) removeUser(productID int64, user string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var kept []Watcher
	for _, w := range d.watchers[productID] {
		if w.User != user {
			kept = append(kept, w)
		}
	}
	d.watchers[productID] = kept
}

// A look that read the watchers before a user stopped must end before the
// relay forgets that user's state, or it brings the state back.
func TestAStoppedWatcherIsNotBroughtBackByALookInProgress(t *testing.T) {
	var g *gatedDirectory
	r := newRigWith(t, rigOptions{}, func(o *Options) { g = newGatedDirectory(o.Directory); o.Directory = g })
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	cfg := AuctionConfig{MaxBid: 1000, Strategy: StrategySniping, AutoBid: true}
	r.watch(lot.ID, alice(lot.ID, cfg))
	r.watch(lot.ID, Watcher{User: "bob", AuctionID: auctionID(lot.ID), Config: cfg, Cookies: "sim_user=bob"})

	g.armed <- struct{}{}
	r.feed.publish(lot.ID, hub.SourceSSE, "")
	<-g.entered // the look holds alice and bob

	r.dir.removeUser(lot.ID, "alice") // alice stops monitoring, as the relay does it
	done := make(chan struct{})
	go func() {
		r.engine.Refresh(lot.ID)
		r.engine.Forget("alice", auctionID(lot.ID))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	<-done
	r.settle()
	if s, ok := r.engine.State("alice", auctionID(lot.ID)); ok {
		t.Errorf("alice's state is back after she stopped: %+v", s)
	}
	if s := r.state("bob", auctionID(lot.ID)); s.Status != StatusWaiting {
		t.Errorf("bob: %+v", s)
	}
}

// blockedPlacer holds every bid until released.
type blockedPlacer struct {
	Placer
	entered chan struct{}
	release chan struct{}
}

func (p blockedPlacer) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error) {
	p.entered <- struct{}{}
	<-p.release
	return p.Placer.PlaceBid(ctx, productID, amount, cookies)
}

// The answer to a bid in flight when the user stopped does not bring the
// forgotten state back: stopping frees it for good.
func TestAnAnswerAfterTheStopDoesNotBringTheStateBack(t *testing.T) {
	p := blockedPlacer{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r := newRig(t, rigOptions{placer: func(pl Placer) Placer { p.Placer = pl; return p }})
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid)
	r.dir.set(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: 1000, Strategy: StrategyAuto, AutoBid: true}))
	r.engine.Refresh(lot.ID)
	<-p.entered

	r.engine.mu.Lock()
	w := r.engine.workers[lot.ID]
	r.engine.mu.Unlock()
	r.dir.remove(lot.ID)
	r.engine.Refresh(lot.ID)
	select {
	case <-w.exited:
	default:
		t.Error("Refresh returned before the stopped worker ended")
	}
	r.engine.Forget("alice", auctionID(lot.ID))
	close(p.release)
	r.settle()
	r.engine.mu.Lock()
	n := len(r.engine.states)
	r.engine.mu.Unlock()
	if n != 0 {
		t.Errorf("%d states after the only watcher stopped, want 0", n)
	}
	if got := r.lot(lot.ID).Leader; got != "alice" {
		t.Errorf("the bid in flight was not completed: leader %q", got)
	}
}
