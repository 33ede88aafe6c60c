// What a feed makes of its stream's events, and gap healing.

package hub

import (
	"errors"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

func TestStalePollNeverRegressesPrice(t *testing.T) {
	e := newEnv(t, sseConfig())
	r, s, _ := e.healthyFeed(7)
	e.noChange(r)

	e.bid(s, 120, 5)
	if c := e.waitChange(r); c.Source != SourceSSE || c.Product.CurrentBid != 120 || c.Product.BidCount != 5 || c.Seq != 2 {
		t.Fatalf("sse bid: %s seq %d price %v count %d", c.Source, c.Seq, c.Product.CurrentBid, c.Product.BidCount)
	}
	// The snapshot still says 100 with 4 bids: the safety-net poll is stale.
	e.clk.Advance(30 * time.Second)
	e.waitPoll(SourcePoll)
	e.noChange(r)
	if c, _ := e.h.State(7); c.Product.CurrentBid != 120 || c.Seq != 2 {
		t.Fatalf("stale poll regressed the state: price %v seq %d", c.Product.CurrentBid, c.Seq)
	}
}

// TestTimeRemainingOnNellisClock: an event's time left becomes a close
// time on Nellis's clock, not the gateway's, so a skewed gateway clock
// does not move the close a sniper aims at.
func TestTimeRemainingOnNellisClock(t *testing.T) {
	const skew = 5 * time.Second // Nellis is ahead
	e := newEnv(t, sseConfig(), func(d *Deps) {
		d.ServerTime = func(local time.Time) time.Time { return local.Add(skew) }
	})
	r, s, _ := e.healthyFeed(7)

	received := e.clk.Now()
	s.obs.StreamEvent(sseupstream.Event{
		Kind: sseupstream.Bid, ProductID: 7, Name: "ch_product_bids:7", ReceivedAt: received,
		Patch: nellis.Patch{ProductID: 7, CurrentBid: ptr(130.0), BidCount: ptr(6), TimeRemaining: ptr(42 * time.Second)},
	})
	c := e.waitChange(r)
	if want := received.Add(skew + 42*time.Second); !c.Product.CloseTime.Equal(want) {
		t.Fatalf("close time %v, want %v (Nellis's clock)", c.Product.CloseTime, want)
	}
}

func TestClosedIsFinalAndStopsUpstream(t *testing.T) {
	e := newEnv(t, sseConfig())
	r, s, _ := e.healthyFeed(7)

	s.obs.StreamEvent(sseupstream.Event{Kind: sseupstream.Closed, ProductID: 7, ReceivedAt: e.clk.Now(),
		Patch: nellis.Patch{ProductID: 7, IsClosed: ptr(true), FinalBid: ptr(100.0), Winner: ptr("ann")}})
	c := e.waitChange(r)
	if !c.Product.IsClosed || c.Product.FinalBid != 100 || c.Product.Winner != "ann" || c.Source != SourceSSE {
		t.Fatalf("close not published: %+v", c.Product)
	}
	e.waitClosed(s) // nothing more to hear
	e.waitStatus(7, "not polling", func(s FeedStatus) bool { return s.NextPoll.IsZero() })
	e.clk.Advance(time.Hour)
	e.noPoll()
	e.noOpen()
	if c, _ := e.h.State(7); !c.Product.IsClosed {
		t.Fatal("closed lot reopened")
	}
}

func TestGapHealing(t *testing.T) {
	e := newEnv(t, sseConfig())
	r, s, _ := e.healthyFeed(7)
	e.noChange(r)

	reconnect := func() {
		s.obs.StreamUp(7)
		s.obs.StreamEvent(sseupstream.Event{Kind: sseupstream.Ping, ProductID: 7})
	}

	// A bid happens while the stream is down.
	s.obs.StreamDown(7, sseupstream.ReasonEOF, nil, 500*time.Millisecond)
	e.ft.set(7, lot(7, 150, 6))
	reconnect()
	e.waitPoll(SourceReconcile)
	c := e.waitChange(r)
	if c.Source != SourceReconcile || c.Product.CurrentBid != 150 || c.Product.BidCount != 6 {
		t.Fatalf("healed change: %s %v %d", c.Source, c.Product.CurrentBid, c.Product.BidCount)
	}
	e.noChange(r) // exactly one
	if !e.clk.Now().Equal(t0) {
		t.Fatal("healing needed time to pass") // it is immediate, well within 3s
	}

	// Nothing missed: a reconnect fetches but publishes nothing.
	s.obs.StreamDown(7, sseupstream.ReasonEOF, nil, 500*time.Millisecond)
	reconnect()
	e.waitPoll(SourceReconcile)
	e.noChange(r)

	// A stall heals at once, before the stream is even back.
	e.ft.set(7, lot(7, 160, 7))
	s.obs.StreamDown(7, sseupstream.ReasonStall, errors.New("no byte for 3s"), time.Second)
	e.waitPoll(SourceReconcile)
	if c := e.waitChange(r); c.Source != SourceReconcile || c.Product.CurrentBid != 160 {
		t.Fatalf("stall healing: %s %v", c.Source, c.Product.CurrentBid)
	}
}

// gate is a subscriber whose Deliver blocks on the change at price until
// open is closed: a fan-out to thousands of sockets that takes its time.
type gate struct {
	price   float64
	blocked chan struct{}
	open    chan struct{}
}

func (g *gate) Deliver(c *Change) {
	if c.Product.CurrentBid == g.price {
		close(g.blocked)
		<-g.open
	}
}

// A feed whose deliveries fell behind its stream publishes the newest
// state of the events waiting, once, instead of each of them late; seq
// stays consecutive. A feed that keeps up publishes every event.
func TestFeedBehindItsStreamPublishesTheNewestState(t *testing.T) {
	e := newEnv(t, sseConfig())
	r, s, _ := e.healthyFeed(7)
	g := &gate{price: 120, blocked: make(chan struct{}), open: make(chan struct{})}
	t.Cleanup(e.h.Subscribe(7, g))
	released := false
	t.Cleanup(func() {
		if !released {
			close(g.open)
		}
	})

	e.bid(s, 120, 5)
	<-g.blocked
	for i := range 3 {
		e.bid(s, float64(121+i), 6+i) // waiting in the stream's queue
	}
	close(g.open)
	released = true
	if c := e.waitChange(r); c.Product.CurrentBid != 120 || c.Seq != 2 {
		t.Fatalf("first change: %v at seq %d, want 120 at 2", c.Product.CurrentBid, c.Seq)
	}
	if c := e.waitChange(r); c.Product.CurrentBid != 123 || c.Product.BidCount != 8 || c.Seq != 3 || c.Source != SourceSSE {
		t.Fatalf("after the backlog: %v (%d bids) at seq %d from %s, want 123 (8 bids) at seq 3 from sse", c.Product.CurrentBid, c.Product.BidCount, c.Seq, c.Source)
	}
	e.noChange(r)

	// Keeping up again, each event is its own change.
	e.bid(s, 124, 9)
	if c := e.waitChange(r); c.Product.CurrentBid != 124 || c.Seq != 4 {
		t.Fatalf("%v at seq %d, want 124 at 4", c.Product.CurrentBid, c.Seq)
	}
	e.bid(s, 125, 10)
	if c := e.waitChange(r); c.Product.CurrentBid != 125 || c.Seq != 5 {
		t.Fatalf("%v at seq %d, want 125 at 5", c.Product.CurrentBid, c.Seq)
	}
}
