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
# HELP nellis_feeds Product feeds by where their prices come from now: sse, poll, or log (a cluster reader fed by the owner's log).
# TYPE nellis_feeds gauge
nellis_feeds{source="log"} 0
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
# HELP nellis_feeds Product feeds by where their prices come from now: sse, poll, or log (a cluster reader fed by the owner's log).
# TYPE nellis_feeds gauge
nellis_feeds{source="log"} 0
nellis_feeds{source="poll"} 0
nellis_feeds{source="sse"} 0
`, "nellis_upstream_streams_open", "nellis_feeds")
}

// The stalest feed of each source and the poll budget are gauges, with no
// product in any label.
func TestStalenessAndPollBudgetGauges(t *testing.T) {
	m := New()
	feeds := []hub.FeedStatus{
		{ProductID: 1, Source: "sse", Staleness: 0.5},
		{ProductID: 2, Source: "sse", Staleness: 1.5},
		{ProductID: 3, Source: "poll", Staleness: 12},
		{ProductID: 4, Source: "poll", Staleness: -1}, // nothing yet
	}
	m.SetStatusSource(func() Snapshot {
		s := SnapshotFromFeeds(feeds)
		s.PollBudget = hub.PollBudget{Short: true, Interval: 10}
		return s
	})
	expectMetrics(t, registered(t, m), `
# HELP nellis_feed_staleness_max_seconds Age of the stalest feed's last good snapshot or stream byte, by where its prices come from now: sse, poll, or log (a cluster reader).
# TYPE nellis_feed_staleness_max_seconds gauge
nellis_feed_staleness_max_seconds{source="log"} 0
nellis_feed_staleness_max_seconds{source="poll"} 12
nellis_feed_staleness_max_seconds{source="sse"} 1.5
# HELP nellis_poll_budget_short 1 while poll_rate cannot poll every polled lot at poll_interval (or poll_interval_closing in its closing window), else 0.
# TYPE nellis_poll_budget_short gauge
nellis_poll_budget_short 1
# HELP nellis_poll_budget_interval_seconds How often poll_rate lets a polled lot outside its closing window be polled now: its expected staleness; -1 for never.
# TYPE nellis_poll_budget_interval_seconds gauge
nellis_poll_budget_interval_seconds 10
`, "nellis_feed_staleness_max_seconds", "nellis_poll_budget_short", "nellis_poll_budget_interval_seconds")
}
