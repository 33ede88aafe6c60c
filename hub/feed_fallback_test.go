// The breaker, fallback polling and the poll schedule.

package hub

import (
	"errors"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/sseupstream"
)

func TestBreakerFallbackAndRecovery(t *testing.T) {
	e := newEnv(t, sseConfig())
	r, s, _ := e.openFeed(7)

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
	e.polledPrice(r, 7, 110, 5, "polled change")

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
	e.polledPrice(recs[capped], capped, 130, 9, "capped product change")

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
