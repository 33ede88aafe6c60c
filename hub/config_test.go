package hub

import (
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/settings"
)

func TestUseSSEOffPollsOnly(t *testing.T) {
	e := newEnv(t, Config{UseSSE: false})
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	e.waitPoll(SourcePoll)
	e.waitChange(r)
	e.waitStatus(7, "polling", func(s FeedStatus) bool {
		return s.Breaker == "disabled" && s.Source == "poll" && s.NextPoll.Equal(t0.Add(2*time.Second))
	})

	e.polledPrice(r, 7, 105, 5, "polled change")
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	e.noChange(r)
	if opened, _ := e.op.count(); opened != 0 {
		t.Fatalf("%d streams opened with use_sse off", opened)
	}
}

func TestUpdateConfigKeepsSubscribersAndStreams(t *testing.T) {
	e := newEnv(t, sseConfig())
	r, s, _ := e.healthyFeed(7)

	// Tuning applies in place: no stream closed or opened.
	cfg := sseConfig()
	cfg.SSE.Endpoint = "http://sse.test"
	cfg.SSE.StallTimeout = settings.Duration(5 * time.Second)
	cfg.Poll.SafetyNet = settings.Duration(10 * time.Second)
	cfg.Limiter = fallback.LimiterConfig{Rate: 1e6, Burst: 1000}
	e.h.UpdateConfig(cfg)
	e.waitStatus(7, "on the new safety net", func(st FeedStatus) bool { return st.NextPoll.Equal(t0.Add(10 * time.Second)) })
	if s.isClosed() {
		t.Fatal("a tuning change closed the stream")
	}
	s.mu.Lock()
	updates := s.updates
	s.mu.Unlock()
	if len(updates) != 1 || time.Duration(updates[0].StallTimeout) != 5*time.Second {
		t.Fatalf("stream config updates %+v, want one with the new stall timeout", updates)
	}
	e.noOpen()

	// use_sse off: the stream closes, the subscriber stays and prices move.
	cfg.UseSSE = false
	e.h.UpdateConfig(cfg)
	e.waitClosed(s)
	e.waitStatus(7, "polling", func(st FeedStatus) bool { return st.Breaker == "disabled" && st.Subscribers == 1 })
	e.polledPrice(r, 7, 111, 5, "polled change after use_sse off")

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

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults without SSE: %v", err)
	}
	err := Config{UseSSE: true, History: -1, Linger: settings.Duration(-time.Second)}.WithDefaults().Validate()
	for _, want := range []string{"ring size", "linger", "sse: endpoint is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to mention %q", err, want)
		}
	}
}
