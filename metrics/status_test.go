package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nellis-edge/gateway/hub"
)

func TestStatusGaugesAreAbsentWithoutASource(t *testing.T) {
	m := New()
	if n := testutil.CollectAndCount(m.status); n != 0 {
		t.Errorf("status collector produced %d series without a source, want none", n)
	}
	if got := m.SSE().Connections.Active; got != 0 {
		t.Errorf("active connections without a source = %d, want 0", got)
	}
}

func TestStatusGaugesReportTheFeeds(t *testing.T) {
	m := New()
	feeds := []hub.FeedStatus{
		{ProductID: 1, Source: "sse", Breaker: "closed", SessionID: "a"},
		{ProductID: 2, Source: "sse", Breaker: "closed", SessionID: "b"},
		{ProductID: 3, Source: "poll", Breaker: "open"},
		{ProductID: 4, Source: "poll", Breaker: "half-open", SessionID: "c"}, // reconnecting: the id outlives the stream
		{ProductID: 5, Source: "poll", Breaker: "disabled"},
		{ProductID: 6, Source: "carrier pigeon", Breaker: "melted"},
	}
	m.SetStatusSource(func() Snapshot {
		s := SnapshotFromFeeds(feeds)
		s.AuthenticatedUsers = 7
		return s
	})

	expectMetrics(t, registered(t, m), `
# HELP nellis_upstream_streams_open Upstream SSE streams up now.
# TYPE nellis_upstream_streams_open gauge
nellis_upstream_streams_open 2
# HELP nellis_feeds Product feeds by where their prices come from now: sse or poll.
# TYPE nellis_feeds gauge
nellis_feeds{source="other"} 1
nellis_feeds{source="poll"} 3
nellis_feeds{source="sse"} 2
# HELP nellis_breaker_feeds Product feeds by the state of their stream circuit breaker: closed, open, half-open, or disabled when SSE is off.
# TYPE nellis_breaker_feeds gauge
nellis_breaker_feeds{state="closed"} 2
nellis_breaker_feeds{state="disabled"} 1
nellis_breaker_feeds{state="half-open"} 1
nellis_breaker_feeds{state="open"} 1
nellis_breaker_feeds{state="other"} 1
# HELP nellis_ws_authenticated_users Distinct users with at least one authenticated WebSocket connection now.
# TYPE nellis_ws_authenticated_users gauge
nellis_ws_authenticated_users 7
`, "nellis_upstream_streams_open", "nellis_feeds", "nellis_breaker_feeds", "nellis_ws_authenticated_users")

	// A reload replaces the source; the next scrape reads the new one.
	m.SetStatusSource(func() Snapshot { return Snapshot{} })
	expectMetrics(t, registered(t, m), `
# HELP nellis_upstream_streams_open Upstream SSE streams up now.
# TYPE nellis_upstream_streams_open gauge
nellis_upstream_streams_open 0
# HELP nellis_feeds Product feeds by where their prices come from now: sse or poll.
# TYPE nellis_feeds gauge
nellis_feeds{source="poll"} 0
nellis_feeds{source="sse"} 0
`, "nellis_upstream_streams_open", "nellis_feeds")
}
