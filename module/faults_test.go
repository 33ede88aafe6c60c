package module

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/metrics"
	"github.com/nellis-edge/gateway/nellissim"
)

// The upstream half of the fault suite (the rig is in faultrig_test.go):
// Nellis misbehaves while one client watches a lot.

// TestFaultUpstreamEOF: Nellis ends the stream; a new one opens within
// 1.5s, and a bid made while there was none reaches the client exactly
// once, within 3s of the reconnect.
func TestFaultUpstreamEOF(t *testing.T) {
	// A long poll interval keeps fallback polling out of the outage, which
	// lasts under a second: what heals the gap must be the reconcile that
	// follows the reconnect.
	r := newRig(t, "poll_interval 10s")
	opened := r.stats(t).StreamsOpened
	dropped := time.Now()
	if err := r.sim.DropStreams(r.id); err != nil {
		t.Fatal(err)
	}
	during := r.bids.bid(t)
	inGap := r.stats(t).StreamsOpened == opened
	reopened := eventually(t, 1500*time.Millisecond, "a new stream after EOF", func() bool {
		return r.stats(t).StreamsOpened > opened
	})
	t.Logf("EOF to new stream: %v", reopened.Sub(dropped).Round(time.Millisecond))
	// Nellis never replays an event: a bid made before the new stream
	// opened can only come by the reconcile snapshot.
	sources := []string{"sse", "reconcile"}
	if inGap {
		sources = []string{"reconcile"}
	}
	s := r.w.awaitBid(t, during, reopened.Add(3*time.Second), sources...)
	t.Logf("bid during the outage (before the new stream: %v) came by %s, %v after the drop",
		inGap, s.source, s.at.Sub(dropped).Round(time.Millisecond))

	r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
	if n := r.w.count(float64(during.CurrentBid)); n != 1 {
		t.Errorf("the bid made during the outage reached the client %d times, want exactly once", n)
	}
	if n := grew(t, r.before, failures("eof")); n != 1 {
		t.Errorf("%s grew by %v, want the one EOF", failures("eof"), n)
	}
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamStall: the stream goes silent with its socket open; a
// new one opens within 5s (stall_timeout 3s, the default), the bid lost in
// the silence is healed, and bids flow again.
func TestFaultUpstreamStall(t *testing.T) {
	// As in the EOF test: the reconcile after the stall heals the gap,
	// not a fallback poll.
	r := newRig(t, "poll_interval 10s")
	opened := r.stats(t).StreamsOpened
	stalled := time.Now()
	if err := r.sim.Stall(r.id, true); err != nil {
		t.Fatal(err)
	}
	lost := r.bids.bid(t) // its event is swallowed by the stall
	reopened := eventually(t, 5*time.Second, "a new stream after a stall", func() bool {
		return r.stats(t).StreamsOpened > opened
	})
	if err := r.sim.Stall(r.id, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("stall to new stream: %v", reopened.Sub(stalled).Round(time.Millisecond))
	// The gateway reconciles as soon as it declares the stall, before it
	// reconnects.
	s := r.w.awaitBid(t, lost, reopened.Add(3*time.Second), "reconcile")
	t.Logf("the bid lost in the stall came by %s, %v after the stall began",
		s.source, s.at.Sub(stalled).Round(time.Millisecond))
	for range 3 {
		r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
	}
	if n := r.w.count(float64(lost.CurrentBid)); n != 1 {
		t.Errorf("the bid lost in the stall reached the client %d times, want exactly once", n)
	}
	if n := grew(t, r.before, failures("stall")); n != 1 {
		t.Errorf("%s grew by %v, want the one stall", failures("stall"), n)
	}
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamErrors: the stream answers 500 again and again; the
// breaker opens and polling brings prices; once the stream answers again
// the product is back on SSE and polling falls to the safety net.
func TestFaultUpstreamErrors(t *testing.T) {
	r := newRig(t, "breaker_cooldown 2s\n\t\tpoll_interval 500ms")
	if err := r.sim.FailStreams(r.id, 10, http.StatusInternalServerError); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	if err := r.sim.DropStreams(r.id); err != nil {
		t.Fatal(err)
	}
	// The EOF and two 500s make breaker_failures (3) in a row.
	opened := awaitGrowth(t, r.before, fallbackActivations, 1, 10*time.Second)
	atOpen := snapshotRequests(r.stats(t))
	t.Logf("drop to breaker open: %v", opened.Sub(dropped).Round(time.Millisecond))
	// The opening breaker reconciles, then polls every 500ms. Once a
	// scheduled poll has come, a bid can only be brought by the next one,
	// well before the first probe (cool-down 2s ±20%) reopens the breaker
	// and reconciles again.
	eventually(t, 2*time.Second, "fallback polling", func() bool {
		return snapshotRequests(r.stats(t)) >= atOpen+2
	})
	s := r.w.awaitBid(t, r.bids.bid(t), dropped.Add(10*time.Second), "poll")
	t.Logf("drop to first polled change: %v", s.at.Sub(dropped).Round(time.Millisecond))

	// Recovery: Nellis serves streams again. The failures left are
	// cleared rather than used up, since each failed probe doubles the
	// cool-down: seven more would take minutes.
	recovering := time.Now()
	st := r.stats(t)
	fallbackRate := float64(snapshotRequests(st)-atOpen) / recovering.Sub(opened).Seconds()
	if err := r.sim.FailStreams(r.id, 0, http.StatusInternalServerError); err != nil {
		t.Fatal(err)
	}
	// The next probe comes within two cool-downs (a probe that failed
	// meanwhile doubled it), jittered by 20%.
	reopened := eventually(t, 6*time.Second, "a probe stream after recovery", func() bool {
		return r.stats(t).StreamsOpened > st.StreamsOpened
	})
	awaitGrowth(t, r.before, breakerClosed, 1, 2*time.Second)
	t.Logf("recovery to a healthy stream: %v; %d stream requests had failed",
		reopened.Sub(recovering).Round(time.Millisecond), st.StreamRequests-st.StreamsOpened)
	r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")

	// Polling falls back to the safety net (30s): at most one snapshot
	// request in the next 3s (a reconcile of the new stream finishing
	// late), where fallback polled every 500ms.
	quiet := snapshotRequests(r.stats(t))
	time.Sleep(3 * time.Second) // a measurement window, not synchronisation
	healthy := snapshotRequests(r.stats(t)) - quiet
	t.Logf("snapshot requests: %.1f/s with the breaker open, %d in 3s back on SSE", fallbackRate, healthy)
	if fallbackRate < 1 {
		t.Errorf("fallback polled %.1f times a second, want about 2 (poll_interval 500ms)", fallbackRate)
	}
	if healthy > 1 {
		t.Errorf("%d snapshot requests in 3s back on SSE: fallback polling did not stop", healthy)
	}
	r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")

	if n := grew(t, r.before, failures("status")); n < 2 {
		t.Errorf("%s grew by %v, want the 500s counted", failures("status"), n)
	}
	if n := grew(t, r.before, failures("eof")); n != 1 {
		t.Errorf("%s grew by %v, want the one drop", failures("eof"), n)
	}
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamPayloads: what Nellis sends is wrong or unusual; the
// stream itself is fine.
func TestFaultUpstreamPayloads(t *testing.T) {
	// Three subtests reconnect within a second or two of each other, which
	// would double the reconnect delay each time; how long it is does not
	// matter here, so backoff_max 1s keeps it at its first step.
	r := newRig(t, "backoff_max 1s")
	event := fmt.Sprintf("ch_product_bids:%d", r.id)

	t.Run("malformed JSON", func(t *testing.T) {
		before := scrape(t)
		var sse metrics.SSEReport
		getJSON(t, gatewaySSEMetrics, &sse)
		opened := r.stats(t).StreamsOpened
		received := len(r.w.history())
		if err := r.sim.SendRaw(r.id, event, fmt.Sprintf(`{"productId":%d,"currentBid":`, r.id)); err != nil {
			t.Fatal(err)
		}
		awaitGrowth(t, before, decodeErrors, 1, 2*time.Second)
		r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
		if n := len(r.w.history()) - received; n != 1 {
			t.Errorf("%d states after a bad payload and a bid, want only the bid's", n)
		}
		if st := r.stats(t); st.StreamsOpened != opened {
			t.Errorf("a bad payload replaced the stream: %d streams opened, want %d", st.StreamsOpened, opened)
		}
		var after metrics.SSEReport
		getJSON(t, gatewaySSEMetrics, &after)
		if after.Reliability.ErrorCount <= sse.Reliability.ErrorCount {
			t.Errorf("/metrics/sse error_count %d after a bad payload, was %d", after.Reliability.ErrorCount, sse.Reliability.ErrorCount)
		}
	})

	t.Run("10 MiB event", func(t *testing.T) {
		before := scrape(t)
		opened := r.stats(t).StreamsOpened
		if err := r.sim.SendRaw(r.id, event, strings.Repeat("x", 10<<20)); err != nil {
			t.Fatal(err)
		}
		// The reader cannot find the end of an oversized event without
		// buffering it, so it drops the stream and opens another.
		eventually(t, 3*time.Second, "a new stream after the oversized event", func() bool {
			return r.stats(t).StreamsOpened > opened
		})
		if n := grew(t, before, failures("too_large")); n != 1 {
			t.Errorf("%s grew by %v, want 1", failures("too_large"), n)
		}
		// A bid right after the reconnect may come by its reconcile; the
		// next by the stream.
		r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(3*time.Second), "sse", "reconcile")
		r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
	})

	variants := []struct {
		name string
		wire nellissim.Wire
	}{
		{"CRLF", nellissim.Wire{CRLF: true}},
		{"comments", nellissim.Wire{Comments: true}},
		{"BOM", nellissim.Wire{BOM: true}},
		{"currentPrice", nellissim.Wire{PriceKey: "currentPrice"}},
		{"current_bid", nellissim.Wire{PriceKey: "current_bid"}},
		{"numbers as strings", nellissim.Wire{NumbersAsStrings: true}},
		{"all at once", nellissim.Wire{CRLF: true, Comments: true, BOM: true, PriceKey: "currentPrice", NumbersAsStrings: true}},
	}
	for _, v := range variants {
		t.Run("wire "+v.name, func(t *testing.T) {
			if err := r.sim.SetWire(v.wire); err != nil {
				t.Fatal(err)
			}
			if v.wire.BOM {
				// A BOM starts a stream: reconnect, and let the new
				// stream's reconcile pass so that a bid can only come by
				// the stream.
				st := r.stats(t)
				if err := r.sim.DropStreams(r.id); err != nil {
					t.Fatal(err)
				}
				eventually(t, 3*time.Second, "a stream starting with a BOM, and its reconcile", func() bool {
					now := r.stats(t)
					return now.StreamsOpened > st.StreamsOpened && snapshotRequests(now) > snapshotRequests(st)
				})
			}
			for range 2 {
				r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
			}
		})
	}
	if err := r.sim.SetWire(nellissim.Wire{}); err != nil {
		t.Fatal(err)
	}
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamSlowDrip: the stream sends one byte a second. No byte
// is ever missing for a stall timeout, but no whole line arrives for three
// of them (with stall_timeout 2s here: 6s, while a 9-byte event takes 8s),
// so the gateway calls the stream stalled ("bytes trickling"), replaces
// it, and the reconcile on reconnect brings the bid the drip held back.
func TestFaultUpstreamSlowDrip(t *testing.T) {
	r := newRig(t, "stall_timeout 2s")
	before := scrape(t)
	opened := r.stats(t).StreamsOpened
	if err := r.sim.SlowDrip(r.id, true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.sim.SlowDrip(r.id, false) }()
	dripping := time.Now()
	// An unnamed event, 9 bytes on the wire, and a bid behind it.
	if err := r.sim.SendRaw(r.id, "", "x"); err != nil {
		t.Fatal(err)
	}
	bid := r.bids.bid(t)

	stalled := awaitGrowth(t, before, failures("stall"), 1, 12*time.Second)
	t.Logf("the dripping stream was called stalled after %v", stalled.Sub(dripping).Round(time.Millisecond))
	if stalled.Sub(dripping) < 2*time.Second {
		t.Errorf("stalled after %v: sooner than the byte watchdog allows, the drip was not in effect", stalled.Sub(dripping))
	}
	s := r.w.awaitBid(t, bid, time.Now().Add(5*time.Second), "reconcile", "poll")
	t.Logf("the bid held back by the drip came by %s after %v", s.source, s.at.Sub(dripping).Round(time.Millisecond))
	eventually(t, 5*time.Second, "the dripping stream to be replaced", func() bool {
		return r.stats(t).StreamsOpened > opened
	})
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamRefused: nothing listens at the SSE endpoint; prices
// still move, by snapshots.
func TestFaultUpstreamRefused(t *testing.T) {
	sim, simURL := newSimulator(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	startGateway(t, sim, refused, simURL, "poll_interval 500ms")
	before := scrape(t)
	lot := sim.Auctions()[0]
	b := &bidder{sim: sim, id: lot.ID}
	w := watch(t, lot.ID)
	w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))
	for range 3 {
		// A fallback poll, or the reconcile of the breaker opening.
		s := w.awaitBid(t, b.bid(t), time.Now().Add(3*time.Second), "poll", "reconcile")
		t.Logf("change without a stream: %v", s)
	}
	awaitGrowth(t, before, failures("dial"), 1, 3*time.Second)
	awaitGrowth(t, before, fallbackActivations, 1, 10*time.Second)
	var sse metrics.SSEReport
	getJSON(t, gatewaySSEMetrics, &sse)
	if sse.Connections.Failed == 0 || sse.Connections.Successful != 0 {
		t.Errorf("/metrics/sse connections %+v, want only failures", sse.Connections)
	}
	w.checkHistory(t, before)
}
