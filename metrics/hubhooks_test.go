package metrics

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

// A stream's life as the hub reports it: two refused attempts, one that
// comes up and stalls, and one that comes up and stays.
func TestHubHooksCountStreamAttemptsAndFailures(t *testing.T) {
	m := New()
	h := m.HubHooks()
	h.StreamDown(1, sseupstream.ReasonDial)
	h.StreamDown(1, sseupstream.ReasonStatus)
	h.StreamUp(1)
	h.StreamDown(1, sseupstream.ReasonStall)
	h.StreamUp(1)
	h.StreamDown(2, sseupstream.ReasonTooLarge)
	h.StreamDown(2, sseupstream.Reason("gremlins"))

	reg := registered(t, m)
	expectMetrics(t, reg, `
# HELP nellis_upstream_stream_attempts_total Upstream SSE connection attempts. An attempt ends either with the stream up or with a dial or status failure.
# TYPE nellis_upstream_stream_attempts_total counter
nellis_upstream_stream_attempts_total 4
# HELP nellis_upstream_stream_successes_total Upstream SSE connection attempts answered with a 200 text/event-stream.
# TYPE nellis_upstream_stream_successes_total counter
nellis_upstream_stream_successes_total 2
# HELP nellis_upstream_stream_failures_total Upstream SSE streams that failed to open or ended, by reason: dial and status fail an attempt; eof, stall, decode and too_large end a live stream.
# TYPE nellis_upstream_stream_failures_total counter
nellis_upstream_stream_failures_total{reason="decode"} 0
nellis_upstream_stream_failures_total{reason="dial"} 1
nellis_upstream_stream_failures_total{reason="eof"} 0
nellis_upstream_stream_failures_total{reason="other"} 1
nellis_upstream_stream_failures_total{reason="stall"} 1
nellis_upstream_stream_failures_total{reason="status"} 1
nellis_upstream_stream_failures_total{reason="too_large"} 1
# HELP nellis_upstream_reconnects_total Upstream SSE reconnections scheduled after a stream ended or failed to open.
# TYPE nellis_upstream_reconnects_total counter
nellis_upstream_reconnects_total 5
`, "nellis_upstream_stream_attempts_total", "nellis_upstream_stream_successes_total",
		"nellis_upstream_stream_failures_total", "nellis_upstream_reconnects_total")
}

func TestHubHooksCountEventsByType(t *testing.T) {
	m := New()
	h := m.HubHooks()
	h.StreamEvent(1, sseupstream.Connected)
	for range 3 {
		h.StreamEvent(1, sseupstream.Ping)
	}
	h.StreamEvent(1, sseupstream.Bid)
	h.StreamEvent(2, sseupstream.Bid)
	h.StreamEvent(2, sseupstream.Closed)
	h.StreamEvent(2, sseupstream.Other)
	h.StreamEvent(2, sseupstream.Kind(99)) // a kind added later still counts
	h.StreamDecodeError(2, "ch_product_bids:2")

	expectMetrics(t, registered(t, m), `
# HELP nellis_upstream_events_total Upstream SSE events dispatched, by type. Pings arrive about once a second per stream.
# TYPE nellis_upstream_events_total counter
nellis_upstream_events_total{type="bid"} 2
nellis_upstream_events_total{type="closed"} 1
nellis_upstream_events_total{type="connected"} 1
nellis_upstream_events_total{type="other"} 2
nellis_upstream_events_total{type="ping"} 3
# HELP nellis_upstream_decode_errors_total Upstream SSE events dropped because their payload could not be decoded or was too large.
# TYPE nellis_upstream_decode_errors_total counter
nellis_upstream_decode_errors_total 1
`, "nellis_upstream_events_total", "nellis_upstream_decode_errors_total")
}

func TestHubHooksCountBreakerTransitionsAndFallbacks(t *testing.T) {
	m := New()
	h := m.HubHooks()
	h.BreakerTransition(1, fallback.Transition{From: fallback.BreakerClosed, To: fallback.BreakerOpen})
	h.FallbackActivated(1)
	h.BreakerTransition(1, fallback.Transition{From: fallback.BreakerOpen, To: fallback.BreakerHalfOpen})
	h.BreakerTransition(1, fallback.Transition{From: fallback.BreakerHalfOpen, To: fallback.BreakerOpen})
	h.FallbackActivated(1)
	h.BreakerTransition(1, fallback.Transition{From: fallback.BreakerOpen, To: fallback.BreakerHalfOpen})
	h.BreakerTransition(1, fallback.Transition{From: fallback.BreakerHalfOpen, To: fallback.BreakerClosed})

	expectMetrics(t, registered(t, m), `
# HELP nellis_breaker_transitions_total Stream circuit breaker state changes, by from and to state.
# TYPE nellis_breaker_transitions_total counter
nellis_breaker_transitions_total{from="closed",to="half-open"} 0
nellis_breaker_transitions_total{from="closed",to="open"} 1
nellis_breaker_transitions_total{from="half-open",to="closed"} 1
nellis_breaker_transitions_total{from="half-open",to="open"} 1
nellis_breaker_transitions_total{from="open",to="closed"} 0
nellis_breaker_transitions_total{from="open",to="half-open"} 2
# HELP nellis_fallback_activations_total Times a feed's breaker opened and snapshot polling took over from its stream.
# TYPE nellis_fallback_activations_total counter
nellis_fallback_activations_total 2
`, "nellis_breaker_transitions_total", "nellis_fallback_activations_total")
}

func TestHubHooksCountPollsByResultAndTimeThem(t *testing.T) {
	m := New()
	h := m.HubHooks()
	// Durations in binary fractions of a second, so the sum is exact.
	h.PollResult(1, hub.SourcePoll, 15625*time.Microsecond, nil)
	h.PollResult(1, hub.SourcePoll, 31250*time.Microsecond, nil)
	h.PollResult(1, hub.SourcePoll, 2*time.Second, fmt.Errorf("nellis: json snapshot: %w", &nellis.StatusError{Code: 503}))
	h.PollResult(1, hub.SourceReconcile, time.Second, &nellis.StatusError{Code: 429})
	h.PollResult(1, hub.SourcePoll, 8*time.Second, fmt.Errorf("fetch: %w", context.DeadlineExceeded))
	h.PollResult(1, hub.SourcePoll, 15625*time.Microsecond, context.Canceled)
	h.PollResult(1, hub.SourcePoll, 62500*time.Microsecond, errors.New("unexpected EOF"))
	h.ReconcileChange(1)

	expectMetrics(t, registered(t, m), `
# HELP nellis_polls_total Snapshot fetches (polls and gap reconciliations), by result.
# TYPE nellis_polls_total counter
nellis_polls_total{result="canceled"} 1
nellis_polls_total{result="error"} 1
nellis_polls_total{result="ok"} 2
nellis_polls_total{result="status_4xx"} 1
nellis_polls_total{result="status_5xx"} 1
nellis_polls_total{result="status_other"} 0
nellis_polls_total{result="timeout"} 1
# HELP nellis_poll_duration_seconds Time a snapshot fetch took, whatever its result.
# TYPE nellis_poll_duration_seconds histogram
nellis_poll_duration_seconds_bucket{le="0.025"} 2
nellis_poll_duration_seconds_bucket{le="0.05"} 3
nellis_poll_duration_seconds_bucket{le="0.1"} 4
nellis_poll_duration_seconds_bucket{le="0.25"} 4
nellis_poll_duration_seconds_bucket{le="0.5"} 4
nellis_poll_duration_seconds_bucket{le="1"} 5
nellis_poll_duration_seconds_bucket{le="2.5"} 6
nellis_poll_duration_seconds_bucket{le="5"} 6
nellis_poll_duration_seconds_bucket{le="10"} 7
nellis_poll_duration_seconds_bucket{le="30"} 7
nellis_poll_duration_seconds_bucket{le="+Inf"} 7
nellis_poll_duration_seconds_sum 11.125
nellis_poll_duration_seconds_count 7
# HELP nellis_reconcile_changes_total Gap-healing snapshots that found a change the stream had missed.
# TYPE nellis_reconcile_changes_total counter
nellis_reconcile_changes_total 1
`, "nellis_polls_total", "nellis_poll_duration_seconds", "nellis_reconcile_changes_total")
}

func TestHubHooksTimePublishedChangesFromReceipt(t *testing.T) {
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	m := New()
	m.now = func() time.Time { return now }
	h := m.HubHooks()
	h.Published(&hub.Change{Source: hub.SourceSSE, ReceivedAt: now.Add(-300 * time.Microsecond)})
	h.Published(&hub.Change{Source: hub.SourcePoll, ReceivedAt: now.Add(-2 * time.Millisecond)})
	h.Published(&hub.Change{Source: hub.SourceReconcile})                             // no receive time: counted, not timed
	h.Published(&hub.Change{Source: hub.SourceSSE, ReceivedAt: now.Add(time.Second)}) // clock stepped back
	h.Published(nil)

	expectMetrics(t, registered(t, m), `
# HELP nellis_changes_published_total Product changes handed to subscribers, by source.
# TYPE nellis_changes_published_total counter
nellis_changes_published_total{source="other"} 0
nellis_changes_published_total{source="poll"} 1
nellis_changes_published_total{source="reconcile"} 1
nellis_changes_published_total{source="sse"} 2
`, "nellis_changes_published_total")
	expectHistogram(t, m.processingTime, 3, 0.0023, map[float64]uint64{
		0.0001: 1, 0.00025: 1, 0.0005: 2, 0.001: 2, 0.0025: 3, 5: 3,
	})
}
