package hub

import (
	"sync"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

// lotClosingAt is a snapshot of an open lot closing at at.
func lotClosingAt(id int64, price float64, at time.Time) nellis.Patch {
	p := lot(id, price, 1)
	p.CloseTime = ptr(at)
	return p
}

// rebalancedAt waits until the rebalancer has made a pass at or after the
// fake clock's now: what that pass decided is then done or under way.
func (e *env) rebalancedAt() {
	e.t.Helper()
	now := e.clk.Now()
	e.eventually("a rebalance at "+now.String(), func() bool { return !e.h.PollBudget().At.Before(now) })
}

// stepUntil advances the fake clock in rebalancer ticks, at most by limit,
// until cond holds; it returns the fake time that took. At the limit it
// waits, without moving the clock, for what the passes so far set going.
func (e *env) stepUntil(limit time.Duration, what string, cond func() bool) time.Duration {
	e.t.Helper()
	start := e.clk.Now()
	for {
		e.rebalancedAt()
		if cond() {
			return e.clk.Now().Sub(start)
		}
		if e.clk.Now().Sub(start) >= limit {
			e.eventually(what+" within "+limit.String()+" of fake time", cond)
			return e.clk.Now().Sub(start)
		}
		e.clk.Advance(rebalanceEvery)
	}
}

// capped subscribes r to productID and waits for its feed to poll for want
// of a stream slot.
func (e *env) cappedFeed(productID int64, s Subscriber) {
	e.t.Helper()
	e.t.Cleanup(e.h.Subscribe(productID, s))
	e.waitStatus(productID, "capped", func(s FeedStatus) bool { return s.StreamCapped && s.Seq > 0 })
}

func (e *env) openedFor(want int64) *fakeStream {
	e.t.Helper()
	s := e.waitOpened()
	if s.id != want {
		e.t.Fatalf("stream opened for product %d, want %d", s.id, want)
	}
	return s
}

// A lot coming within its closing window plus the margin takes the stream
// of the streamed lot furthest from closing within a second; that lot goes
// to polling and still gets every change.
func TestLotNearingItsCloseTakesTheFurthestLotsStream(t *testing.T) {
	cfg := sseConfig()
	cfg.MaxStreams = 2
	e := newEnv(t, cfg)
	closeB := t0.Add(10 * time.Minute)
	e.ft.set(1, lotClosingAt(1, 10, t0.Add(2*time.Hour)))
	e.ft.set(2, lotClosingAt(2, 10, closeB))
	e.ft.set(3, lotClosingAt(3, 10, t0.Add(time.Hour)))
	rA, sA, _ := e.openFeed(1)
	e.makeHealthy(sA)
	_, sC, _ := e.openFeed(3)
	e.makeHealthy(sC)
	e.cappedFeed(2, newRecorder())

	// 2m1s before B's close (closing window 60s + margin 60s): nothing moves.
	e.clk.Set(closeB.Add(-2*time.Minute - time.Second))
	e.rebalancedAt()
	e.noOpen()
	if sA.isClosed() || sC.isClosed() {
		t.Fatal("a stream closed before the lot waiting for one was near its close")
	}

	took := e.stepUntil(time.Second, "B streamed", func() bool { return len(e.op.opened) > 0 })
	e.openedFor(2)
	if took > time.Second {
		t.Fatalf("promoted after %v of fake time, want within 1s", took)
	}
	e.waitClosed(sA) // closes in 2h: the furthest
	if sC.isClosed() {
		t.Fatal("the lot closing sooner lost its stream")
	}
	e.waitStatus(1, "polled for want of a slot", func(s FeedStatus) bool { return s.StreamCapped && s.Source == "poll" })

	// The demoted lot's changes still come, by polls.
	e.ft.set(1, lotClosingAt(1, 55, t0.Add(2*time.Hour)))
	for deadline := time.Now().Add(waitTimeout); ; {
		e.clk.Advance(time.Second)
		if c := latest(rA); c != nil && c.Product.CurrentBid == 55 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("demoted lot's change never delivered")
		}
	}
}

// latest drains r and returns the last change it held, nil for none.
func latest(r *recorder) *Change {
	var c *Change
	for {
		select {
		case next := <-r.ch:
			c = next
		case <-time.After(10 * time.Millisecond):
			return c
		}
	}
}

// Two lots in the closing margin whose close times leapfrog on late bids
// keep the stream where it is: neither passes it back and forth.
func TestLeapfroggingCloseTimesDoNotMoveTheStream(t *testing.T) {
	cfg := sseConfig()
	cfg.MaxStreams = 1
	e := newEnv(t, cfg)
	e.ft.set(1, lotClosingAt(1, 10, t0.Add(100*time.Second)))
	e.ft.set(2, lotClosingAt(2, 10, t0.Add(105*time.Second)))
	_, sA, _ := e.openFeed(1)
	e.makeHealthy(sA)
	e.cappedFeed(2, newRecorder())

	// A late bid moves A's close to after B's; then B's moves later still.
	sA.obs.StreamEvent(sseupstream.Event{Kind: sseupstream.Bid, ProductID: 1, ReceivedAt: e.clk.Now(),
		Patch: nellis.Patch{ProductID: 1, CurrentBid: ptr(20.0), BidCount: ptr(2), CloseTime: ptr(t0.Add(125 * time.Second))}})
	e.eventually("A's close moved", func() bool {
		c, ok := e.h.State(1)
		return ok && c.Product.CloseTime.Equal(t0.Add(125*time.Second))
	})
	for range 8 {
		e.clk.Advance(rebalanceEvery)
		e.rebalancedAt()
	}
	e.ft.set(2, lotClosingAt(2, 20, t0.Add(130*time.Second)))
	for range 8 {
		e.clk.Advance(rebalanceEvery)
		e.rebalancedAt()
	}
	e.noOpen()
	if sA.isClosed() {
		t.Fatal("the streamed lot lost its stream to a lot closing 20s sooner at most")
	}

	// A lot closing far sooner does take it.
	e.ft.set(2, lotClosingAt(2, 30, e.clk.Now().Add(70*time.Second)))
	e.stepUntil(5*time.Second, "B streamed", func() bool { return len(e.op.opened) > 0 })
	e.openedFor(2)
	e.waitClosed(sA)
}

// autoBidSub is the auto-bid engine's subscriber as the hub sees it.
type autoBidSub struct{ *recorder }

func (autoBidSub) AutoBids() bool { return true }

// Auto-bid lots outrank lots only watched, however many watch those; a
// free slot goes to the most watched lot waiting.
func TestAutoBidLotsOutrankWatchers(t *testing.T) {
	cfg := sseConfig()
	cfg.MaxStreams = 1
	var mu sync.Mutex
	watchers := map[int64]int{1: 3, 2: 1, 3: 5, 4: 1}
	e := newEnv(t, cfg, func(d *Deps) {
		d.Watchers = func(id int64) int {
			mu.Lock()
			defer mu.Unlock()
			return watchers[id]
		}
	})
	_, sA, _ := e.openFeed(1)
	e.makeHealthy(sA)
	// More watchers move no open stream.
	e.cappedFeed(3, newRecorder())
	for range 4 {
		e.clk.Advance(rebalanceEvery)
		e.rebalancedAt()
	}
	e.noOpen()

	// An auto-bid lot does.
	unsubB := e.h.Subscribe(2, autoBidSub{newRecorder()})
	e.stepUntil(time.Second, "auto-bid lot streamed", func() bool { return len(e.op.opened) > 0 })
	sB := e.openedFor(2)
	e.waitClosed(sA)

	// B's auto-bidder leaves: its feed lingers out and closes, and the
	// freed slot goes to the most watched of the lots waiting (3, not 1 or 4).
	e.cappedFeed(4, newRecorder())
	unsubB()
	e.waitStatus(2, "lingering", func(s FeedStatus) bool { return !s.LingerUntil.IsZero() })
	e.clk.Advance(30 * time.Second)
	e.waitClosed(sB)
	e.openedFor(3)
}

// The rebalancer asks a lot's watcher count at most once per
// watchersFresh, not every quarter second: at 5,000 lots the asking took
// a sixth of the gateway's CPU.
func TestWatchersAreAskedOncePerFreshness(t *testing.T) {
	cfg := sseConfig()
	cfg.MaxStreams = 1
	var mu sync.Mutex
	asked := map[int64]int{}
	e := newEnv(t, cfg, func(d *Deps) {
		d.Watchers = func(id int64) int {
			mu.Lock()
			defer mu.Unlock()
			asked[id]++
			return 1
		}
	})
	count := func(id int64) int {
		mu.Lock()
		defer mu.Unlock()
		return asked[id]
	}
	_, s, _ := e.openFeed(1)
	e.makeHealthy(s)
	e.cappedFeed(2, newRecorder())
	e.stepUntil(time.Second, "lot 2 ranked", func() bool { return count(2) > 0 })
	before := count(2)
	for range int(watchersFresh/rebalanceEvery) - 1 {
		e.clk.Advance(rebalanceEvery)
		e.rebalancedAt()
	}
	if n := count(2) - before; n != 0 {
		t.Fatalf("lot 2's watchers asked %d more times within %s", n, watchersFresh)
	}
	e.stepUntil(2*rebalanceEvery, "lot 2's watchers asked again", func() bool { return count(2) > before })
}

// Woken every millisecond (lots closing, streams handed on), the
// rebalancer of 5,000 lots is not busy all the time: it rests after a
// wake-up in proportion to its last pass (a twentieth of a core, or more
// where a pass costs over 25 ms, as under the race detector).
func TestRebalancerRestsWhenWokenOften(t *testing.T) {
	h := newNight(t)
	h.mu.Lock()
	h.startRebalancer()
	h.mu.Unlock()
	start := time.Now()
	for time.Since(start) < time.Second {
		h.mu.Lock()
		h.kickRebalance()
		h.mu.Unlock()
		time.Sleep(time.Millisecond) // the wake-ups' pace, not a synchronisation
	}
	busy, elapsed := time.Duration(h.scratch.busy.Load()), time.Since(start)
	// A pass of cost c rests min(20c, maxRest): at most c/(c+rest) of the
	// time in passes, whatever a pass costs on this machine now (the race
	// detector and other work make it vary); twice that with room for the
	// first pass, which follows no rest. Without the rest it is near 1.
	c := busy / time.Duration(max(h.scratch.passes.Load(), 1))
	duty := float64(c) / float64(c+min(rebalanceDuty*c, maxRest))
	if got := float64(busy) / float64(elapsed); got > 2*duty+0.05 {
		t.Fatalf("rebalancing took %s of %s (%.2f), passes of %s should rest to %.2f", busy, elapsed, got, c, duty)
	}
}
