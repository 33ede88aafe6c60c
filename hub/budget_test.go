package hub

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/fallback"
)

// When poll_rate cannot poll every polled lot at poll_interval, the hub says
// so once, with the numbers, and each lot's status shows the staleness it
// can expect; once the budget covers them again it says that once too.
func TestShortPollBudgetIsToldOnceWithTheNumbers(t *testing.T) {
	withLogs, logs := logsAtInfo()
	e := newEnv(t, Config{Limiter: fallback.LimiterConfig{Rate: 1}}, withLogs)
	var unsubs []func()
	for id := int64(1); id <= 10; id++ {
		unsubs = append(unsubs, e.h.Subscribe(id, newRecorder()))
	}
	e.eventually("budget weighed with 10 polled lots", func() bool { return e.h.PollBudget().PolledLots == 10 })
	for range 8 {
		e.clk.Advance(rebalanceEvery)
		e.rebalancedAt()
	}
	b := e.h.PollBudget()
	// 10 lots every 2s need 5 polls a second; at 1 a second each waits 10s.
	if !b.Short || b.Rate != 1 || b.Needed != 5 || b.Interval != 10 || b.ClosingInterval != 1 {
		t.Fatalf("budget %+v, want short, rate 1, needed 5, interval 10s, closing 1s", b)
	}
	warned := logs.FilterMessageSnippet("poll budget short").All()
	if len(warned) != 1 {
		t.Fatalf("%d warnings of a short budget, want 1", len(warned))
	}
	// It warned as the lots came, at the first count the rate fell short
	// of: n lots every 2s at 1 a second wait n seconds each.
	if f := warned[0].ContextMap(); f["polled_lots"].(int64) < 3 || f["poll_rate"] != 1.0 || f["achievable_interval_s"] != float64(f["polled_lots"].(int64)) {
		t.Fatalf("warning fields %v", f)
	}
	for _, s := range e.h.Status() {
		if s.ExpectedStaleness != 10 {
			t.Fatalf("product %d: expected staleness %v, want 10", s.ProductID, s.ExpectedStaleness)
		}
	}

	for i, u := range unsubs[1:] {
		u()
		e.waitStatus(int64(i+2), "lingering", func(s FeedStatus) bool { return !s.LingerUntil.IsZero() })
	}
	e.clk.Advance(31 * time.Second)
	e.eventually("lingering feeds gone", func() bool { return len(e.h.Status()) == 1 })
	e.clk.Advance(rebalanceEvery)
	e.rebalancedAt()
	if b := e.h.PollBudget(); b.Short {
		t.Fatalf("budget %+v with one polled lot, want covered", b)
	}
	// The longer interval of the lots that left is stated until it has
	// been waited out (TestBudgetHoldsTheIntervalTheWaitingLotsWaitOut).
	e.stepUntil(30*time.Second, "the one lot's interval stated", func() bool { return e.h.PollBudget().Interval == 2 })
	if n := logs.FilterMessageSnippet("poll budget covers").Len(); n != 1 {
		t.Fatalf("%d notes of the budget covered again, want 1", n)
	}
	unsubs[0]()
}

// A polled lot's staleness is the age of its last good snapshot.
func TestStalenessIsTheAgeOfTheLastGoodSnapshot(t *testing.T) {
	e := newEnv(t, Config{})
	t.Cleanup(e.h.Subscribe(1, newRecorder()))
	e.waitPoll(SourcePoll)
	e.waitStatus(1, "fresh", func(s FeedStatus) bool { return s.Staleness == 0 })
	e.ft.fail(errors.New("nellis: status 502"))
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	e.waitStatus(1, "4s stale", func(s FeedStatus) bool { return s.Staleness == 4 })
}

// When the closing lots alone ask more than poll_rate, the other polled
// lots still keep their share (fallback.RoutineEvery): the budget gives
// them a bounded interval, not never.
func TestClosingLotsLeavePolledLotsABoundedInterval(t *testing.T) {
	e := newEnv(t, Config{})
	for id := int64(1); id <= 5; id++ {
		at := t0.Add(time.Hour)
		if id <= 3 {
			at = t0.Add(30 * time.Second)
		}
		e.ft.set(id, lotClosingAt(id, 10, at))
		t.Cleanup(e.h.Subscribe(id, newRecorder()))
		e.waitPoll(SourcePoll)
	}
	// The rebalancer learns each lot's close time from its feed after
	// the poll: weighed at 1/s while a closing lot still counted as
	// routine, the routine interval would be 15 s, and it is rightly held
	// while lots wait out that turn (TestBudgetHoldsTheIntervalTheWaiting
	// LotsWaitOut).
	e.eventually("every lot's close time weighed", func() bool {
		e.clk.Advance(rebalanceEvery)
		e.rebalancedAt()
		b := e.h.PollBudget()
		return b.PolledLots == 5 && b.ClosingPolledLots == 3
	})
	e.h.UpdateConfig(Config{Limiter: fallback.LimiterConfig{Rate: 1}})
	e.eventually("budget weighed at 1/s", func() bool {
		e.clk.Advance(rebalanceEvery)
		e.rebalancedAt()
		return e.h.PollBudget().Rate == 1
	})
	// 3 closing lots ask 3/s and get 4/5 of the rate: each every 3.75 s;
	// the other 2 ask 1/s and keep 1/5: each every 10 s.
	b := e.h.PollBudget()
	if !b.Short || b.ClosingPolledLots != 3 || b.PolledLots != 5 || math.Abs(b.ClosingInterval-3.75) > 1e-9 || math.Abs(b.Interval-10) > 1e-9 {
		t.Fatalf("budget %+v, want short, 3 of 5 polled lots closing, every 3.75 s and 10 s", b)
	}
}

// First snapshots and gap-healing fetches (streams opening and closing as
// lots near their close) take from the rate what the polled lots' turns
// cannot have: the budget's interval counts them.
func TestOneOffFetchesStretchThePolledLotsInterval(t *testing.T) {
	h := New(Config{Limiter: fallback.LimiterConfig{Rate: 10}}, Deps{})
	t.Cleanup(h.Close)
	cfg := h.cfg
	claims := make([]slotClaim, 20) // 20 polled lots every 2s: 10/s
	for i := range claims {
		claims[i].closeAt = t0.Add(time.Hour)
	}
	h.weighBudget(t0, cfg, claims)
	if b := h.PollBudget(); b.Short || b.Interval != 2 || b.OneOffRate != 0 {
		t.Fatalf("budget %+v, want covered at 2s", b)
	}
	h.scratch.fetches.oneOffs.Add(50) // 5 a second over the next 10 s
	h.weighBudget(t0.Add(10*time.Second), cfg, claims)
	if b := h.PollBudget(); !b.Short || b.OneOffRate != 5 || b.Interval != 4 {
		t.Fatalf("budget %+v, want 5 one-off fetches a second leaving half the rate: every 4s", b)
	}
}

// When requests wait for the limiter throughout and fewer fetches get
// done than poll_rate allows (poll_concurrency round trips in flight carry
// no more), the budget is weighed against what got done.
func TestBudgetWeighsWhatTheFetchesCarry(t *testing.T) {
	h := New(Config{Limiter: fallback.LimiterConfig{Rate: 10, MaxInFlight: 1}}, Deps{})
	t.Cleanup(h.Close)
	held, err := h.limiter.Acquire(t.Context(), fallback.Routine)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		p, err := h.limiter.Acquire(t.Context(), fallback.Routine)
		if err == nil {
			p.Done(nil)
		}
		waited <- err
	}()
	for h.limiter.Stats().Waiting == 0 {
		time.Sleep(time.Millisecond) // polling a condition, not synchronising on time
	}
	claims := make([]slotClaim, 20) // 20 polled lots every 2s: 10/s
	for i := range claims {
		claims[i].closeAt = t0.Add(time.Hour)
	}
	h.weighBudget(t0, h.cfg, claims)
	h.scratch.fetches.done.Add(30) // 3 a second over the next 10 s
	for at := t0.Add(rebalanceEvery); !at.After(t0.Add(10 * time.Second)); at = at.Add(rebalanceEvery) {
		h.weighBudget(at, h.cfg, claims) // a pass every quarter second, as the rebalancer's
	}
	b := h.PollBudget()
	if !b.Short || b.Rate != 10 || b.Capacity != 3 || math.Abs(b.Interval-20.0/3) > 1e-9 {
		t.Fatalf("budget %+v, want short at a capacity of 3/s of 10: every 6.7s", b)
	}
	held.Done(nil)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
}

// As lots leave the polled ones (given streams as others close), the
// interval weighed for the fewer lots left shortens at once, but the lots
// already waiting still wait behind as many as asked before them: the
// budget keeps stating the longer interval until it has passed, so every
// polled lot stays within what it states.
func TestBudgetHoldsTheIntervalTheWaitingLotsWaitOut(t *testing.T) {
	h := New(Config{Limiter: fallback.LimiterConfig{Rate: 10}}, Deps{})
	t.Cleanup(h.Close)
	polled := func(n int) []slotClaim {
		claims := make([]slotClaim, n)
		for i := range claims {
			claims[i].closeAt = t0.Add(time.Hour)
		}
		return claims
	}
	h.weighBudget(t0, h.cfg, polled(80)) // 80 lots every 2 s at 10/s: each every 8 s
	if b := h.PollBudget(); b.Interval != 8 {
		t.Fatalf("budget %+v, want 80 lots every 8 s", b)
	}
	h.weighBudget(t0.Add(time.Second), h.cfg, polled(40)) // 40 lots: every 4 s, for a lot asking now
	if b := h.PollBudget(); b.Interval != 8 || b.PolledLots != 40 {
		t.Fatalf("a second after 40 lots left: budget %+v, want 40 lots still stated every 8 s (the lots waiting wait out 8 s)", b)
	}
	h.weighBudget(t0.Add(8*time.Second), h.cfg, polled(40))
	if b := h.PollBudget(); b.Interval != 8 {
		t.Fatalf("8 s after the 8-s interval was weighed: budget %+v, want still 8 s", b)
	}
	h.weighBudget(t0.Add(8*time.Second+rebalanceEvery), h.cfg, polled(40))
	if b := h.PollBudget(); b.Interval != 4 {
		t.Fatalf("once the 8-s interval has passed: budget %+v, want 4 s", b)
	}
	h.weighBudget(t0.Add(9*time.Second), h.cfg, polled(120)) // more lots: longer at once
	if b := h.PollBudget(); b.Interval != 12 {
		t.Fatalf("with 120 lots: budget %+v, want 12 s at once", b)
	}
}

// A polled lot that has just entered its closing window still waits for
// its first closing poll: until a closing interval has passed, its
// staleness may be a polled lot's interval plus the time since the window
// opened; after that, the closing interval.
func TestALotEnteringItsClosingWindowIsHeldToItsLastTurn(t *testing.T) {
	b := PollBudget{Interval: 60, ClosingInterval: 5}
	window := time.Minute
	entered := func(ago time.Duration) slotClaim { return slotClaim{closeAt: t0.Add(window - ago)} }
	for _, c := range []struct {
		ago  time.Duration
		want float64
	}{{0, 60}, {3 * time.Second, 63}, {5 * time.Second, 5}, {30 * time.Second, 5}} {
		if got := expectedStaleness(entered(c.ago), b, t0, window); got != c.want {
			t.Errorf("%s into its closing window: expected staleness %v s, want %v", c.ago, got, c.want)
		}
	}
	if got := expectedStaleness(slotClaim{closeAt: t0.Add(time.Hour)}, b, t0, window); got != 60 {
		t.Errorf("a lot outside its closing window: %v s, want the polled lots' 60", got)
	}
}

// When the round trips slow down (Nellis or the machine under load) while
// polls wait throughout, the budget sees the lower rate within seconds,
// not a whole window later: the interval it states stays a true bound.
func TestBudgetSeesTheFetchesSlowDownWithinSeconds(t *testing.T) {
	h := New(Config{Limiter: fallback.LimiterConfig{Rate: 10, MaxInFlight: 1}}, Deps{})
	t.Cleanup(h.Close)
	held, err := h.limiter.Acquire(t.Context(), fallback.Routine)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Done(nil) })
	waited := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(func() { cancel(); <-waited })
	go func() {
		_, err := h.limiter.Acquire(ctx, fallback.Routine)
		waited <- err
	}()
	for h.limiter.Stats().Waiting == 0 {
		time.Sleep(time.Millisecond) // polling a condition, not synchronising on time
	}
	claims := make([]slotClaim, 20) // 20 polled lots every 2s: 10/s
	for i := range claims {
		claims[i].closeAt = t0.Add(time.Hour)
	}
	at := t0
	pass := func(fetches int64) { // a quarter second, as the rebalancer's
		h.scratch.fetches.done.Add(fetches)
		at = at.Add(rebalanceEvery)
		h.weighBudget(at, h.cfg, claims)
	}
	h.weighBudget(at, h.cfg, claims)
	for i := range 40 { // 10 s at 10 fetches a second: the rate is carried
		pass(2 + int64(i%2))
	}
	if b := h.PollBudget(); b.Capacity != 10 || b.Interval != 2 {
		t.Fatalf("budget %+v, want 10/s carried, every 2 s", b)
	}
	for i := range 12 { // 3 s at 1 fetch a second
		var n int64
		if i%4 == 3 {
			n = 1
		}
		pass(n)
	}
	if b := h.PollBudget(); b.Capacity > 2 || b.Interval < 10 {
		t.Fatalf("3 s into a slowdown to 1 fetch a second: budget %+v, want the lower rate seen and every 10 s or more", b)
	}
}
