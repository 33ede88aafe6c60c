package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/clock/clocktest"
	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/nellis"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type acquired struct {
	p   *fallback.Permit
	err error
}

func acquireAsync(ctx context.Context, l *fallback.Limiter, pri fallback.Priority) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		p, err := l.Acquire(ctx, pri)
		ch <- acquired{p, err}
	}()
	return ch
}

func waitAsync(ctx context.Context, r *fallback.Request) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		p, err := r.Wait(ctx)
		ch <- acquired{p, err}
	}()
	return ch
}

func mustGet(t *testing.T, ch <-chan acquired) *fallback.Permit {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("Acquire: %v", a.err)
		}
		return a.p
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire did not return")
		return nil
	}
}

func mustWait(t *testing.T, ch <-chan acquired) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("Acquire returned early: %v", a.err)
	case <-time.After(20 * time.Millisecond):
	}
}

// waitTimer blocks until a timer is armed on clk and returns its instant.
func waitTimer(t *testing.T, clk *clocktest.Clock) time.Time {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		armed := clk.TimerArmed()
		if at, ok := clk.NextDeadline(); ok {
			return at
		}
		select {
		case <-armed:
		case <-deadline:
			t.Fatal("no timer armed")
		}
	}
}

func TestLimiterRate(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 10, MaxInFlight: 100}, clk)
	ctx := context.Background()

	mustGet(t, acquireAsync(ctx, l, fallback.Routine)).Done(nil)
	second := acquireAsync(ctx, l, fallback.Routine)
	if at := waitTimer(t, clk); at.Sub(t0) != 100*time.Millisecond {
		t.Fatalf("second request waits until t0+%v, want t0+100ms", at.Sub(t0))
	}
	mustWait(t, second)
	clk.Advance(100 * time.Millisecond)
	mustGet(t, second).Done(nil)
}

func TestLimiterConcurrencyCapAndPriority(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 1000, Burst: 100, MaxInFlight: 2}, clk)
	ctx := context.Background()

	a := mustGet(t, acquireAsync(ctx, l, fallback.Routine))
	b := mustGet(t, acquireAsync(ctx, l, fallback.Routine))
	routine := acquireAsync(ctx, l, fallback.Routine)
	waitQueued(t, l, 1)
	urgent := acquireAsync(ctx, l, fallback.Urgent)
	waitQueued(t, l, 2)
	mustWait(t, routine)

	a.Done(nil)
	u := mustGet(t, urgent) // the urgent request jumped the queue
	mustWait(t, routine)
	b.Done(nil)
	mustGet(t, routine).Done(nil)
	u.Done(nil)
	u.Done(nil) // a second Done is harmless
	if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("after all Done: %+v", s)
	}
}

// Background requests (products no user monitors) get a slot only when no
// routine or urgent one waits, whenever they came.
func TestLimiterBackgroundComesLast(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 1000, Burst: 100, MaxInFlight: 1}, clk)
	ctx := context.Background()

	held := mustGet(t, acquireAsync(ctx, l, fallback.Urgent))
	background := acquireAsync(ctx, l, fallback.Background)
	waitQueued(t, l, 1)
	routine := acquireAsync(ctx, l, fallback.Routine)
	waitQueued(t, l, 2)
	urgent := acquireAsync(ctx, l, fallback.Urgent)
	waitQueued(t, l, 3)

	held.Done(nil)
	u := mustGet(t, urgent)
	mustWait(t, background)
	u.Done(nil)
	r := mustGet(t, routine)
	mustWait(t, background)
	r.Done(nil)
	mustGet(t, background).Done(nil)

	// A new background request queues behind one already waiting, and a
	// free slot is taken at once only when nobody waits at all.
	mustGet(t, acquireAsync(ctx, l, fallback.Background)).Done(nil)
}

// One background request at a time holds a slot (and so a place in the
// line for tokens): the others wait even while slots are free, and an
// urgent request never finds them all taken by the background.
func TestLimiterBackgroundTakesOneSlot(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 1000, Burst: 100, MaxInFlight: 4}, clk)
	ctx := context.Background()

	first := mustGet(t, acquireAsync(ctx, l, fallback.Background))
	second := acquireAsync(ctx, l, fallback.Background)
	waitQueued(t, l, 1)
	mustWait(t, second)
	u := mustGet(t, acquireAsync(ctx, l, fallback.Urgent))
	r := mustGet(t, acquireAsync(ctx, l, fallback.Routine))
	first.Done(nil)
	mustGet(t, second).Done(nil)
	u.Done(nil)
	r.Done(nil)

	// Promoted, a request waiting only for the background's slot goes.
	held := mustGet(t, acquireAsync(ctx, l, fallback.Background))
	req := l.NewRequest(fallback.Background)
	promotable := waitAsync(ctx, req)
	waitQueued(t, l, 1)
	req.Raise(fallback.Urgent)
	mustGet(t, promotable).Done(nil)
	held.Done(nil)
	if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("after all Done: %+v", s)
	}
}

// A background request whose product a bidder now wants is promoted: it
// goes ahead of the routine ones, behind the urgent ones queued before.
func TestLimiterPromotesAWaitingBackgroundRequest(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 1000, Burst: 100, MaxInFlight: 1}, clk)
	ctx := context.Background()

	held := mustGet(t, acquireAsync(ctx, l, fallback.Routine))
	req := l.NewRequest(fallback.Background)
	promotable := waitAsync(ctx, req)
	waitQueued(t, l, 1)
	routine := acquireAsync(ctx, l, fallback.Routine)
	waitQueued(t, l, 2)
	urgent := acquireAsync(ctx, l, fallback.Urgent)
	waitQueued(t, l, 3)
	req.Raise(fallback.Urgent)
	for deadline := time.Now().Add(5 * time.Second); l.Stats().Background != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the promoted request is still in the background queue")
		}
		time.Sleep(time.Millisecond) // polling a condition, not synchronising on time
	}

	held.Done(nil)
	mustGet(t, urgent).Done(nil)
	u := mustGet(t, promotable)
	mustWait(t, routine)
	u.Done(nil)
	mustGet(t, routine).Done(nil)
	if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("after all Done: %+v", s)
	}
}

func waitQueued(t *testing.T, l *fallback.Limiter, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); l.Stats().Waiting != n; {
		if time.Now().After(deadline) {
			t.Fatalf("waiting = %d, want %d", l.Stats().Waiting, n)
		}
		time.Sleep(time.Millisecond) // polling a condition, not synchronising on time
	}
}

func TestLimiterCancelWhileQueued(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{MaxInFlight: 1}, clk)
	held := mustGet(t, acquireAsync(context.Background(), l, fallback.Routine))
	ctx, cancel := context.WithCancel(context.Background())
	queued := acquireAsync(ctx, l, fallback.Urgent)
	waitQueued(t, l, 1)
	cancel()
	if a := <-queued; !errors.Is(a.err, context.Canceled) {
		t.Fatalf("cancelled Acquire: %v", a.err)
	}
	held.Done(nil)
	if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("cancelled waiter left state behind: %+v", s)
	}
}

func TestLimiterCancelWhileWaitingForToken(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 1, MaxInFlight: 1}, clk)
	mustGet(t, acquireAsync(context.Background(), l, fallback.Routine)).Done(nil)
	ctx, cancel := context.WithCancel(context.Background())
	waiting := acquireAsync(ctx, l, fallback.Routine)
	waitTimer(t, clk)
	cancel()
	if a := <-waiting; !errors.Is(a.err, context.Canceled) {
		t.Fatalf("cancelled Acquire: %v", a.err)
	}
	if s := l.Stats(); s.InFlight != 0 {
		t.Fatalf("slot not returned: %+v", s)
	}
}

func TestLimiterThrottleSlowsDownAndRecovers(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 10, Recover: 10 * time.Second}, clk)
	ctx := context.Background()

	mustGet(t, acquireAsync(ctx, l, fallback.Routine)).Done(fmt.Errorf("snapshot: %w", &nellis.StatusError{Code: 503}))
	if r := l.Stats().Rate; r != 5 {
		t.Fatalf("rate after a 503: %v, want 5", r)
	}
	clk.Advance(time.Second)
	mustGet(t, acquireAsync(ctx, l, fallback.Routine)).Done(&nellis.StatusError{Code: 429})
	if r := l.Stats().Rate; r != 2.5 {
		t.Fatalf("rate after a 429: %v, want 2.5", r)
	}
	// The next request waits a token at the slowed rate: 1/2.5 s.
	next := acquireAsync(ctx, l, fallback.Routine)
	if at := waitTimer(t, clk); at.Sub(clk.Now()) != 400*time.Millisecond {
		t.Fatalf("slowed request waits %v, want 400ms", at.Sub(clk.Now()))
	}
	clk.Advance(400 * time.Millisecond)
	mustGet(t, next).Done(nil)
	if r := l.Stats().Rate; r != 2.5 {
		t.Fatalf("rate recovered too early: %v", r)
	}

	// A 404 is not throttling; after the quiet period the rate steps up.
	clk.Advance(10 * time.Second)
	mustGet(t, acquireAsync(ctx, l, fallback.Routine)).Done(&nellis.StatusError{Code: 404})
	if r := l.Stats().Rate; r != 5 {
		t.Fatalf("rate after 10 quiet seconds: %v, want 5", r)
	}
	clk.Advance(10 * time.Second)
	mustGet(t, acquireAsync(ctx, l, fallback.Routine)).Done(nil)
	if r := l.Stats().Rate; r != 10 {
		t.Fatalf("rate after 20 quiet seconds: %v, want 10 (the configured rate)", r)
	}
}

func TestLimiterRetryAfterPausesEveryone(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 100, Burst: 10}, clk)
	ctx := context.Background()
	mustGet(t, acquireAsync(ctx, l, fallback.Urgent)).Done(&nellis.StatusError{Code: 429, RetryAfter: 7 * time.Second})
	next := acquireAsync(ctx, l, fallback.Urgent)
	if at := waitTimer(t, clk); at.Sub(t0) != 7*time.Second {
		t.Fatalf("paused until t0+%v, want t0+7s", at.Sub(t0))
	}
	mustWait(t, next)
	clk.Advance(7 * time.Second)
	mustGet(t, next).Done(nil)
}

func TestLimiterConfigValidate(t *testing.T) {
	if err := (fallback.LimiterConfig{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if err := (fallback.LimiterConfig{Rate: 1, MinRate: 2, Backoff: 1.5}).WithDefaults().Validate(); err == nil {
		t.Fatal("min_rate above rate and backoff 1.5 accepted")
	}
}

// With one slot, waiting requests go highest priority first: closing lots'
// polls, then first snapshots, then the polled lots' turns, then a healthy
// stream's insurance, then the background; each line in arrival order.
func TestLimiterServesEveryPriorityInOrder(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 1000, Burst: 100, MaxInFlight: 1}, clk)
	ctx := context.Background()

	held := mustGet(t, acquireAsync(ctx, l, fallback.Urgent))
	order := []fallback.Priority{fallback.Background, fallback.Insurance, fallback.Routine, fallback.First, fallback.Urgent}
	waiting := map[fallback.Priority]<-chan acquired{}
	for i, pri := range order {
		waiting[pri] = acquireAsync(ctx, l, pri)
		waitQueued(t, l, i+1)
	}
	held.Done(nil)
	for i := len(order) - 1; i >= 0; i-- {
		p := mustGet(t, waiting[order[i]])
		for _, later := range order[:i] {
			mustWait(t, waiting[later])
		}
		p.Done(nil)
	}
}

// A request raised while it waits (its lot entered the closing window)
// goes ahead of every lower one queued before it, and behind the requests
// already at its new priority.
func TestLimiterRaisedRequestGoesAhead(t *testing.T) {
	clk := clocktest.NewClock(t0)
	l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 1000, Burst: 100, MaxInFlight: 1}, clk)
	ctx := context.Background()

	held := mustGet(t, acquireAsync(ctx, l, fallback.Routine))
	req := l.NewRequest(fallback.Insurance)
	raised := waitAsync(ctx, req)
	waitQueued(t, l, 1)
	first := acquireAsync(ctx, l, fallback.First)
	waitQueued(t, l, 2)
	urgent := acquireAsync(ctx, l, fallback.Urgent)
	waitQueued(t, l, 3)
	req.Raise(fallback.Urgent)
	req.Raise(fallback.Routine) // lowering is ignored
	if got := req.Priority(); got != fallback.Urgent {
		t.Fatalf("priority after raising to urgent and asking routine: %v", got)
	}

	held.Done(nil)
	u := mustGet(t, urgent)
	mustWait(t, raised)
	u.Done(nil)
	r := mustGet(t, raised)
	mustWait(t, first)
	r.Done(nil)
	mustGet(t, first).Done(nil)
	if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("after all Done: %+v", s)
	}
}

// However many closing lots' polls wait, a polled lot's turn comes, and
// a lot just watched gets its first snapshot: while one waits, one slot in
// RoutineEvery goes to its line.
func TestLimiterKeepsAShareBehindUrgent(t *testing.T) {
	for _, pri := range []fallback.Priority{fallback.Routine, fallback.First} {
		clk := clocktest.NewClock(t0)
		l := fallback.NewLimiter(fallback.LimiterConfig{Rate: 1000, Burst: 100, MaxInFlight: 1}, clk)
		ctx := context.Background()

		held := mustGet(t, acquireAsync(ctx, l, fallback.Urgent))
		lower := acquireAsync(ctx, l, pri)
		waitQueued(t, l, 1)
		var urgent []<-chan acquired
		for i := range 2 * fallback.RoutineEvery {
			urgent = append(urgent, acquireAsync(ctx, l, fallback.Urgent))
			waitQueued(t, l, i+2)
		}
		held.Done(nil)
		for _, u := range urgent[:fallback.RoutineEvery-1] {
			p := mustGet(t, u)
			mustWait(t, lower)
			p.Done(nil)
		}
		r := mustGet(t, lower)
		mustWait(t, urgent[fallback.RoutineEvery-1])
		r.Done(nil)
		for _, u := range urgent[fallback.RoutineEvery-1:] {
			mustGet(t, u).Done(nil)
		}
		if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
			t.Fatalf("priority %v: after all Done: %+v", pri, s)
		}
	}
}
