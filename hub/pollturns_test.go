package hub

import (
	"testing"
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/sseupstream"
)

// holdLimiter takes the limiter's one slot (MaxInFlight 1) for the test:
// every fetch asked meanwhile waits its turn, as on a night when
// poll_rate is short. Release hands the slot on.
func (e *env) holdLimiter() (release func()) {
	e.t.Helper()
	p, err := e.h.limiter.Acquire(e.t.Context(), fallback.Urgent)
	if err != nil {
		e.t.Fatal(err)
	}
	return func() { p.Done(nil) }
}

// fetchesOf waits until productID's feed has no fetch in flight and its
// next poll planned, and returns the sources of its fetches done since the
// last call (other products' are dropped).
func (e *env) fetchesOf(productID int64) []Source {
	e.t.Helper()
	e.waitStatus(productID, "done fetching", func(s FeedStatus) bool { return !s.NextPoll.IsZero() })
	var got []Source
	for {
		select {
		case p := <-e.polls:
			if p.id == productID {
				got = append(got, p.source)
			}
		default:
			return got
		}
	}
}

// A polled lot has a poll waiting its turn when it is given a stream; the
// reconcile the stream's start asks is that poll, not a second turn after
// it: on a night with a dozen promotions a second, two turns each were a
// tenth of what the polled lots get, and their stated interval not kept.
func TestALotGivenAStreamTakesOnePollTurn(t *testing.T) {
	cfg := sseConfig()
	cfg.MaxStreams = 1
	cfg.Limiter = fallback.LimiterConfig{Rate: 1e6, Burst: 1000, MaxInFlight: 1}
	e := newEnv(t, cfg)
	e.ft.set(1, lotClosingAt(1, 10, t0.Add(2*time.Hour)))
	e.ft.set(2, lotClosingAt(2, 10, t0.Add(time.Hour)))
	_, s1, _ := e.openFeed(1)
	e.makeHealthy(s1)
	e.cappedFeed(2, newRecorder())
	e.fetchesOf(2)

	release := e.holdLimiter()
	e.clk.Advance(2 * time.Second) // lot 2's poll asks, and waits
	e.eventually("lot 2's poll waiting", func() bool { return e.h.limiter.Stats().Waiting == 1 })
	cfg.MaxStreams = 2
	e.h.UpdateConfig(cfg)
	e.rebalancedAt()
	s2 := e.openedFor(2)
	s2.obs.StreamUp(2) // asks the reconcile
	s2.obs.StreamEvent(sseupstream.Event{Kind: sseupstream.Ping, ProductID: 2, ReceivedAt: e.clk.Now()})
	e.waitStatus(2, "on sse", func(s FeedStatus) bool { return s.Source == "sse" })
	release()

	if got := e.fetchesOf(2); len(got) != 1 || got[0] != SourceReconcile {
		t.Fatalf("lot 2 given a stream fetched %v, want one reconcile", got)
	}
}

// A streamed lot that loses its stream to a lot closing sooner is as fresh
// as its stream's last byte (its own insurance polls never ran on a short
// budget), and heals the gap with the poll it had waiting, in one turn.
func TestALotLosingItsStreamIsAsFreshAsItsStream(t *testing.T) {
	cfg := sseConfig()
	cfg.MaxStreams = 1
	cfg.Limiter = fallback.LimiterConfig{Rate: 1e6, Burst: 1000, MaxInFlight: 1}
	e := newEnv(t, cfg)
	closeB := t0.Add(10 * time.Minute)
	e.ft.set(1, lotClosingAt(1, 10, t0.Add(2*time.Hour)))
	e.ft.set(2, lotClosingAt(2, 10, closeB))
	_, s1, _ := e.openFeed(1)
	e.makeHealthy(s1)
	e.cappedFeed(2, newRecorder())
	e.fetchesOf(1)

	release := e.holdLimiter()
	// Lot 1's safety-net polls wait from 30 s on; its stream keeps it
	// current until lot 2 nears its close and takes the stream: at
	// closing window plus margin (2 min) before it, that bound included.
	// The clock lands a second short of it, so that no rebalance can take
	// the stream before the ping below is played.
	promote := closeB.Add(-2 * time.Minute)
	e.clk.Set(promote.Add(-time.Second))
	s1.pinged(promote.Add(-time.Second))
	e.stepUntil(2*time.Second, "lot 2 streamed", func() bool { return len(e.op.opened) > 0 })
	e.openedFor(2)
	e.waitClosed(s1)
	st := e.waitStatus(1, "polled", func(s FeedStatus) bool { return s.Source == "poll" && s.StreamCapped })
	if st.Staleness > 2 {
		t.Fatalf("lot 1 just off its stream: staleness %v s, want the stream's last byte's age (about 1 s), not its first snapshot's", st.Staleness)
	}
	release()
	if got := e.fetchesOf(1); len(got) != 1 || got[0] != SourceReconcile {
		t.Fatalf("lot 1 off its stream fetched %v, want one reconcile", got)
	}
}
