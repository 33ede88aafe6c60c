package hub

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/fallback/fallbacktest"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

func TestFiftySubscribersShareOneStream(t *testing.T) {
	e := newEnv(t, sseConfig())
	e.ft.gate = make(chan struct{}) // every subscriber is in before the first state
	recs := make([]*recorder, 50)
	for i := range recs {
		recs[i] = newRecorder()
		defer e.h.Subscribe(7, recs[i])()
	}
	close(e.ft.gate)
	e.waitOpened()
	e.waitPoll(SourcePoll)
	first := e.waitChange(recs[0])
	if first.Seq != 1 || first.Product.CurrentBid != 100 || first.Source != SourcePoll {
		t.Fatalf("first change: seq %d price %v source %s", first.Seq, first.Product.CurrentBid, first.Source)
	}
	for _, r := range recs[1:] {
		if c := e.waitChange(r); c != first {
			t.Fatalf("subscribers got different changes: %p vs %p", c, first)
		}
	}
	if !strings.Contains(string(first.JSON), `"currentBid":100`) {
		t.Errorf("change JSON %s lacks the price", first.JSON)
	}
	st := e.waitStatus(7, "50 subscribers", func(s FeedStatus) bool { return s.Subscribers == 50 })
	if st.Epoch != first.Epoch || st.Seq != 1 {
		t.Errorf("status epoch/seq %s/%d, want %s/1", st.Epoch, st.Seq, first.Epoch)
	}
	e.noOpen()
	if opened, _ := e.op.count(); opened != 1 {
		t.Fatalf("%d streams opened for 50 subscribers, want 1", opened)
	}
	e.ft.mu.Lock()
	cookie := e.ft.cookies[0]
	e.ft.mu.Unlock()
	if cookie != "session=secret" {
		t.Errorf("snapshot fetched with cookies %q, want the user's", cookie)
	}
}

func TestLingerClosesFeedAndReinterestKeepsIt(t *testing.T) {
	e := newEnv(t, sseConfig())
	r := newRecorder()
	unsub := e.h.Subscribe(7, r)
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	first := e.waitChange(r)
	e.makeHealthy(s)

	unsub()
	unsub() // idempotent
	st := e.waitStatus(7, "lingering", func(s FeedStatus) bool { return !s.LingerUntil.IsZero() })
	if want := t0.Add(30 * time.Second); !st.LingerUntil.Equal(want) {
		t.Fatalf("linger until %v, want %v", st.LingerUntil, want)
	}

	// Interest comes back within the linger: the feed and its stream stay.
	e.clk.Advance(29 * time.Second)
	r2 := newRecorder()
	unsub2 := e.h.Subscribe(7, r2)
	e.waitStatus(7, "not lingering", func(s FeedStatus) bool { return s.LingerUntil.IsZero() && s.Subscribers == 1 })
	e.clk.Advance(time.Minute)
	e.waitPoll(SourcePoll) // the safety net at t0+30s: the feed ran past the old linger deadline
	if s.isClosed() {
		t.Fatal("stream closed although interest came back within the linger")
	}
	if c, ok := e.h.State(7); !ok || c.Epoch != first.Epoch {
		t.Fatalf("feed recreated during re-interest: %v %q", ok, c.Epoch)
	}

	// The last subscriber leaves for good: after the linger, nothing is left.
	unsub2()
	e.waitStatus(7, "lingering again", func(s FeedStatus) bool { return !s.LingerUntil.IsZero() })
	e.clk.Advance(30 * time.Second)
	e.waitClosed(s)
	e.waitGone(7)
	if _, ok := e.h.State(7); ok {
		t.Fatal("State of a closed feed")
	}

	// New interest opens a new feed with a new epoch.
	r3 := newRecorder()
	defer e.h.Subscribe(7, r3)()
	e.waitOpened()
	if c := e.waitChange(r3); c.Epoch == first.Epoch || c.Seq != 1 {
		t.Fatalf("reopened feed: epoch %q (old %q), seq %d", c.Epoch, first.Epoch, c.Seq)
	}
}

// eventually waits for a condition another goroutine makes true.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(waitTimeout); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("never: %s", what)
		}
	}
}

func (e *env) waitGone(productID int64) {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		found := false
		for _, s := range e.h.Status() {
			found = found || s.ProductID == productID
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("feed %d still in the hub", productID)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStalePollNeverRegressesPrice(t *testing.T) {
	e := newEnv(t, sseConfig())
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	e.waitChange(r)
	e.makeHealthy(s)
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
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	e.waitChange(r)
	e.makeHealthy(s)

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
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	e.waitChange(r)
	e.makeHealthy(s)

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

func TestBreakerFallbackAndRecovery(t *testing.T) {
	e := newEnv(t, sseConfig())
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	e.waitChange(r)

	for range 3 {
		s.obs.StreamDown(7, sseupstream.ReasonStatus, errors.New("status 500"), time.Second)
	}
	e.waitTransition(fallback.BreakerOpen)
	e.waitClosed(s)
	e.waitPoll(SourceReconcile) // gap healing when the breaker opens
	e.waitStatus(7, "polling every 2s", func(s FeedStatus) bool {
		return s.Breaker == "open" && s.Source == "poll" && s.NextPoll.Equal(t0.Add(2*time.Second))
	})

	// Polled updates flow.
	e.ft.set(7, lot(7, 110, 5))
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	if c := e.waitChange(r); c.Source != SourcePoll || c.Product.CurrentBid != 110 {
		t.Fatalf("polled change: %s %v", c.Source, c.Product.CurrentBid)
	}

	// After the cool-down (10s, no jitter here) one probe stream opens.
	e.clk.Advance(8 * time.Second)
	e.waitTransition(fallback.BreakerHalfOpen)
	probe := e.waitOpened()
	e.waitPoll(SourcePoll)
	e.makeHealthy(probe)
	e.waitTransition(fallback.BreakerClosed)

	// Back on SSE: only the safety net polls, 30s after the last fetch.
	st := e.waitStatus(7, "on sse", func(s FeedStatus) bool { return s.Source == "sse" && s.Breaker == "closed" && !s.NextPoll.IsZero() })
	if got := st.NextPoll.Sub(e.clk.Now()); got != 30*time.Second {
		t.Fatalf("next poll in %v after recovery, want the 30s safety net", got)
	}
	e.bid(probe, 115, 6)
	if c := e.waitChange(r); c.Source != SourceSSE || c.Product.CurrentBid != 115 {
		t.Fatalf("sse after recovery: %s %v", c.Source, c.Product.CurrentBid)
	}
	if opened, open := e.op.count(); opened != 2 || open != 1 {
		t.Fatalf("streams opened %d, open %d; want 2, 1", opened, open)
	}
}

func TestGapHealing(t *testing.T) {
	e := newEnv(t, sseConfig())
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	e.waitChange(r)
	e.makeHealthy(s)
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

func TestUseSSEOffPollsOnly(t *testing.T) {
	e := newEnv(t, Config{UseSSE: false})
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	e.waitPoll(SourcePoll)
	e.waitChange(r)
	e.waitStatus(7, "polling", func(s FeedStatus) bool {
		return s.Breaker == "disabled" && s.Source == "poll" && s.NextPoll.Equal(t0.Add(2*time.Second))
	})

	e.ft.set(7, lot(7, 105, 5))
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	if c := e.waitChange(r); c.Product.CurrentBid != 105 || c.Source != SourcePoll {
		t.Fatalf("polled change: %v %s", c.Product.CurrentBid, c.Source)
	}
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	e.noChange(r)
	if opened, _ := e.op.count(); opened != 0 {
		t.Fatalf("%d streams opened with use_sse off", opened)
	}
}

func TestClosingWindowIntervals(t *testing.T) {
	t.Run("polling only: 1s in the last minute", func(t *testing.T) {
		e := newEnv(t, Config{})
		p := lot(7, 100, 4)
		p.CloseTime = ptr(t0.Add(50 * time.Second))
		e.ft.set(7, p)
		defer e.h.Subscribe(7, newRecorder())()
		e.waitPoll(SourcePoll)
		e.waitStatus(7, "polling every 1s", func(s FeedStatus) bool { return s.NextPoll.Equal(t0.Add(time.Second)) })
	})
	t.Run("healthy stream: hedge from the start of the last minute", func(t *testing.T) {
		e := newEnv(t, sseConfig())
		p := lot(7, 100, 4)
		p.CloseTime = ptr(t0.Add(80 * time.Second))
		e.ft.set(7, p)
		defer e.h.Subscribe(7, newRecorder())()
		s := e.waitOpened()
		e.waitPoll(SourcePoll)
		e.makeHealthy(s)
		// The safety net would wait 30s; the closing window opens at 20s.
		e.waitStatus(7, "hedge planned", func(s FeedStatus) bool { return s.NextPoll.Equal(t0.Add(20 * time.Second)) })
		e.clk.Advance(20 * time.Second)
		e.waitPoll(SourcePoll)
		e.waitStatus(7, "hedging every 2s", func(s FeedStatus) bool { return s.NextPoll.Equal(t0.Add(22 * time.Second)) })
	})
}

func TestUpdateConfigKeepsSubscribersAndStreams(t *testing.T) {
	e := newEnv(t, sseConfig())
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	e.waitChange(r)
	e.makeHealthy(s)

	// Tuning applies in place: no stream closed or opened.
	cfg := sseConfig()
	cfg.SSE.Endpoint = "http://sse.test"
	cfg.SSE.StallTimeout = 5 * time.Second
	cfg.Poll.SafetyNet = 10 * time.Second
	cfg.Limiter = fallback.LimiterConfig{Rate: 1e6, Burst: 1000}
	e.h.UpdateConfig(cfg)
	e.waitStatus(7, "on the new safety net", func(st FeedStatus) bool { return st.NextPoll.Equal(t0.Add(10 * time.Second)) })
	if s.isClosed() {
		t.Fatal("a tuning change closed the stream")
	}
	s.mu.Lock()
	updates := s.updates
	s.mu.Unlock()
	if len(updates) != 1 || updates[0].StallTimeout != 5*time.Second {
		t.Fatalf("stream config updates %+v, want one with the new stall timeout", updates)
	}
	e.noOpen()

	// use_sse off: the stream closes, the subscriber stays and prices move.
	cfg.UseSSE = false
	e.h.UpdateConfig(cfg)
	e.waitClosed(s)
	e.waitStatus(7, "polling", func(st FeedStatus) bool { return st.Breaker == "disabled" && st.Subscribers == 1 })
	e.ft.set(7, lot(7, 111, 5))
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	if c := e.waitChange(r); c.Product.CurrentBid != 111 || c.Source != SourcePoll {
		t.Fatalf("polled change after use_sse off: %v %s", c.Product.CurrentBid, c.Source)
	}

	// use_sse on again: a stream opens for the same subscriber.
	cfg.UseSSE = true
	e.h.UpdateConfig(cfg)
	s2 := e.waitOpened()
	e.makeHealthy(s2)
	e.bid(s2, 120, 6)
	if c := e.waitChange(r); c.Product.CurrentBid != 120 || c.Source != SourceSSE {
		t.Fatalf("sse change after use_sse on: %v %s", c.Product.CurrentBid, c.Source)
	}
	if opened, open := e.op.count(); opened != 2 || open != 1 {
		t.Fatalf("streams opened %d, open %d; want 2, 1", opened, open)
	}
}

func TestMaxStreamsPollsTheRest(t *testing.T) {
	cfg := sseConfig()
	cfg.MaxStreams = 2
	e := newEnv(t, cfg)
	recs := map[int64]*recorder{1: newRecorder(), 2: newRecorder(), 3: newRecorder()}
	unsubs := map[int64]func(){}
	for id, r := range recs {
		unsubs[id] = e.h.Subscribe(id, r)
	}
	defer func() {
		for _, u := range unsubs {
			u()
		}
	}()
	streams := map[int64]*fakeStream{}
	for range 2 {
		s := e.waitOpened()
		streams[s.id] = s
	}
	for range 3 {
		e.waitPoll(SourcePoll)
	}
	for _, s := range streams {
		e.makeHealthy(s)
	}
	var capped int64
	for id := range recs {
		if streams[id] == nil {
			capped = id
		}
	}
	e.waitStatus(capped, "capped", func(s FeedStatus) bool { return s.StreamCapped && s.Source == "poll" })
	e.noOpen()

	// The capped product is polled.
	for _, r := range recs {
		e.waitChange(r)
	}
	e.ft.set(capped, lot(capped, 130, 9))
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	if c := e.waitChange(recs[capped]); c.Product.CurrentBid != 130 || c.Source != SourcePoll {
		t.Fatalf("capped product change: %v %s", c.Product.CurrentBid, c.Source)
	}

	// A freed slot goes to the capped product at its next wake.
	var freed int64
	for id := range streams {
		freed = id
		break
	}
	unsubs[freed]()
	e.waitStatus(freed, "lingering", func(s FeedStatus) bool { return !s.LingerUntil.IsZero() })
	e.clk.Advance(30 * time.Second)
	e.waitClosed(streams[freed])
	// The capped feed may have taken the slot at a poll during the linger
	// already; if not, its next poll does.
	e.eventually("slot freed or taken", func() bool { return e.h.OpenStreams() == 1 || len(e.op.opened) > 0 })
	e.clk.Advance(2 * time.Second)
	if s := e.waitOpened(); s.id != capped {
		t.Fatalf("freed slot went to product %d, want %d", s.id, capped)
	}
}

func TestSince(t *testing.T) {
	cfg := sseConfig()
	cfg.RingSize = 4
	e := newEnv(t, cfg)
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	first := e.waitChange(r)
	e.makeHealthy(s)
	for i := 2; i <= 6; i++ {
		e.bid(s, float64(100+i), 4+i)
		if c := e.waitChange(r); c.Seq != uint64(i) {
			t.Fatalf("change seq %d, want %d", c.Seq, i)
		}
	}
	epoch := first.Epoch
	seqs := func(cs []*Change) (out []uint64) {
		for _, c := range cs {
			out = append(out, c.Seq)
			if c.Product.CurrentBid != float64(100+c.Seq) {
				t.Errorf("change %d carries price %v", c.Seq, c.Product.CurrentBid)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		id    int64
		epoch string
		seq   uint64
		want  string
		ok    bool
	}{
		{"missed three", 7, epoch, 3, "[4 5 6]", true},
		{"up to date", 7, epoch, 6, "[]", true},
		{"oldest kept", 7, epoch, 2, "[3 4 5 6]", true},
		{"ring overflowed", 7, epoch, 1, "[]", false},
		{"other epoch", 7, "0123456789abcdef", 3, "[]", false},
		{"from the future", 7, epoch, 7, "[]", false},
		{"no such feed", 8, epoch, 3, "[]", false},
	} {
		got, ok := e.h.Since(tc.id, tc.epoch, tc.seq)
		if ok != tc.ok || fmt.Sprint(seqs(got)) != tc.want {
			t.Errorf("%s: Since = %v, %v; want %s, %v", tc.name, seqs(got), ok, tc.want, tc.ok)
		}
	}
	if c, ok := e.h.State(7); !ok || c.Seq != 6 || c.Product.CurrentBid != 106 {
		t.Fatalf("State: %v seq %d price %v", ok, c.Seq, c.Product.CurrentBid)
	}
}

// droppingSubscriber follows the Deliver contract with a one-slot queue
// that nobody drains: it keeps the first change and drops the rest.
type droppingSubscriber struct {
	queue   chan *Change
	dropped atomic.Int64
}

func (d *droppingSubscriber) Deliver(c *Change) {
	select {
	case d.queue <- c:
	default:
		d.dropped.Add(1)
	}
}

// reentrantSubscriber calls back into the hub from Deliver.
type reentrantSubscriber struct {
	h     *Hub
	seen  chan uint64
	unsub func()
}

func (s *reentrantSubscriber) Deliver(c *Change) {
	if st, ok := s.h.State(c.ProductID); ok {
		s.seen <- st.Seq
	}
	if c.Seq == 3 {
		s.unsub()
	}
}

func TestSlowSubscriberCannotBlockTheFeed(t *testing.T) {
	e := newEnv(t, sseConfig())
	e.ft.gate = make(chan struct{}) // all three are in before the first state
	slow := &droppingSubscriber{queue: make(chan *Change, 1)}
	defer e.h.Subscribe(7, slow)()
	re := &reentrantSubscriber{h: e.h, seen: make(chan uint64, 100)}
	re.unsub = e.h.Subscribe(7, re)
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	close(e.ft.gate)

	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	e.waitChange(r)
	e.makeHealthy(s)
	for i := 2; i <= 10; i++ {
		e.bid(s, float64(100+i), 4+i)
		if c := e.waitChange(r); c.Seq != uint64(i) {
			t.Fatalf("fast subscriber got seq %d, want %d", c.Seq, i)
		}
	}
	// The fast subscriber may hear of a change before the slow one does.
	e.eventually("slow subscriber dropped 9", func() bool { return slow.dropped.Load() == 9 })
	if got := len(slow.queue); got != 1 {
		t.Errorf("slow subscriber queued %d, want 1", got)
	}
	if got := len(re.seen); got != 3 {
		t.Errorf("re-entrant subscriber saw %d changes, want 3 (it left at seq 3)", got)
	}
	e.waitStatus(7, "2 subscribers", func(s FeedStatus) bool { return s.Subscribers == 2 })
}

func TestSnapshotErrorsDegradeWithoutZeros(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	e := newEnv(t, Config{}, func(d *Deps) { d.Logger = zap.New(core) })
	e.ft.fail(errors.New("nellis: html snapshot: no data"))
	r := newRecorder()
	defer e.h.Subscribe(7, r)()

	for i := range 3 {
		if i > 0 {
			e.clk.Advance(2 * time.Second)
		}
		if p := e.waitPoll(SourcePoll); p.err == nil {
			t.Fatal("fetch succeeded")
		}
	}
	e.noChange(r)
	if _, ok := e.h.State(7); ok {
		t.Fatal("a state was published without any snapshot")
	}
	st := e.waitStatus(7, "degraded", func(s FeedStatus) bool { return s.Degraded != "" })
	if !strings.Contains(st.LastError, "no data") {
		t.Errorf("last error %q", st.LastError)
	}
	if n := logs.FilterMessage("snapshot failing; feed degraded").Len(); n != 1 {
		t.Errorf("failure logged %d times over 3 failures, want once", n)
	}
	for _, entry := range logs.All() {
		for _, f := range entry.Context {
			if strings.Contains(f.String, "secret") {
				t.Errorf("cookie in log %q: %v", entry.Message, f)
			}
		}
	}

	e.ft.fail(nil)
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	if c := e.waitChange(r); c.Product.CurrentBid != 100 {
		t.Fatalf("recovered state: %v", c.Product.CurrentBid)
	}
	e.waitStatus(7, "healthy", func(s FeedStatus) bool { return s.Degraded == "" })
	if n := logs.FilterMessage("snapshot recovered").Len(); n != 1 {
		t.Errorf("recovery logged %d times, want once", n)
	}
}

func TestSnapshotOfAnotherProductIsAnError(t *testing.T) {
	e := newEnv(t, Config{})
	e.ft.set(7, lot(8, 999, 9))
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	if p := e.waitPoll(SourcePoll); p.err == nil || !strings.Contains(p.err.Error(), "product 8") {
		t.Fatalf("fetch error %v, want one naming the wrong product", p.err)
	}
	e.noChange(r)
}

func TestCloseEndsEverything(t *testing.T) {
	e := newEnv(t, sseConfig())
	for id := int64(1); id <= 3; id++ {
		e.h.Subscribe(id, newRecorder())
	}
	streams := []*fakeStream{e.waitOpened(), e.waitOpened(), e.waitOpened()}
	e.h.Close()
	for _, s := range streams {
		if !s.isClosed() {
			t.Fatalf("stream %d open after Close", s.id)
		}
	}
	if len(e.h.Status()) != 0 {
		t.Fatal("feeds left after Close")
	}
	e.h.Subscribe(1, newRecorder())() // a no-op after Close
	e.noOpen()
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults without SSE: %v", err)
	}
	err := Config{UseSSE: true, RingSize: -1, Linger: -time.Second}.WithDefaults().Validate()
	for _, want := range []string{"ring size", "linger", "sse: endpoint is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to mention %q", err, want)
		}
	}
}

type panickingSubscriber struct{}

func (panickingSubscriber) Deliver(*Change) { panic("relay bug") }

func TestPanickingSubscriberDropsOnlyItsFeed(t *testing.T) {
	e := newEnv(t, Config{})
	other := newRecorder()
	defer e.h.Subscribe(8, other)()
	e.h.Subscribe(7, panickingSubscriber{})
	e.waitGone(7)
	e.waitChange(other) // product 8 carries on

	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	if c := e.waitChange(r); c.Seq != 1 {
		t.Fatalf("fresh feed starts at seq %d", c.Seq)
	}
}

func TestMissingFetcherDegradesInsteadOfPanicking(t *testing.T) {
	clk := fallbacktest.NewClock(t0)
	h := New(Config{}, Deps{Clock: clk})
	defer h.Close()
	defer h.Subscribe(7, newRecorder())()
	h.Subscribe(7, nil)() // ignored
	deadline := time.Now().Add(waitTimeout)
	for {
		if st := h.Status(); len(st) == 1 && strings.Contains(st[0].LastError, "no snapshot fetcher") {
			if st[0].Subscribers != 1 {
				t.Fatalf("subscribers %d, want 1 (nil ignored)", st[0].Subscribers)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", h.Status())
		}
		time.Sleep(time.Millisecond)
	}
}
