package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nellis-edge/gateway/hub"
)

// Snapshot is the gateway's state at one moment, for the gauges that are
// better read than counted: counting them from events would drift whenever
// a stream or a user goes away without an event saying so.
type Snapshot struct {
	// OpenStreams is the number of upstream SSE streams up now.
	OpenStreams int
	// FeedsBySource counts feeds by where their prices come from now:
	// "sse" or "poll". Other keys are reported as "other".
	FeedsBySource map[string]int
	// Breakers counts feeds by the state of their stream breaker, as
	// hub.FeedStatus names it: "closed", "open", "half-open", or "disabled"
	// when SSE is off. Other keys are reported as "other".
	Breakers map[string]int
	// AuthenticatedUsers is the number of distinct users with at least one
	// authenticated WebSocket connection.
	AuthenticatedUsers int
}

// statusCollector reports a Snapshot as gauges. It reads the source on
// every scrape, so the values are never stale and cost nothing between
// scrapes.
type statusCollector struct {
	source atomic.Pointer[func() Snapshot] // set by SetStatusSource

	openStreams *prometheus.Desc
	feeds       *prometheus.Desc
	breakers    *prometheus.Desc
	users       *prometheus.Desc
}

func newStatusCollector() *statusCollector {
	return &statusCollector{
		openStreams: prometheus.NewDesc(namespace+"_upstream_streams_open",
			"Upstream SSE streams up now.", nil, nil),
		feeds: prometheus.NewDesc(namespace+"_feeds",
			"Product feeds by where their prices come from now: sse or poll.", []string{"source"}, nil),
		breakers: prometheus.NewDesc(namespace+"_breaker_feeds",
			"Product feeds by the state of their stream circuit breaker: closed, open, half-open, or disabled when SSE is off.", []string{"state"}, nil),
		users: prometheus.NewDesc(namespace+"_ws_authenticated_users",
			"Distinct users with at least one authenticated WebSocket connection now.", nil, nil),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.openStreams
	ch <- c.feeds
	ch <- c.breakers
	ch <- c.users
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.snapshot()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.openStreams, prometheus.GaugeValue, float64(s.OpenStreams))
	ch <- prometheus.MustNewConstMetric(c.users, prometheus.GaugeValue, float64(s.AuthenticatedUsers))

	feeds := make(map[string]int, len(feedSources)+1)
	for _, source := range feedSources {
		feeds[source] = 0 // every known source reported, even at zero
	}
	for source, n := range s.FeedsBySource {
		feeds[known(source, feedSources)] += n
	}
	for source, n := range feeds {
		ch <- prometheus.MustNewConstMetric(c.feeds, prometheus.GaugeValue, float64(n), source)
	}

	breakers := make(map[string]int, len(feedBreakerStates)+1)
	for _, state := range feedBreakerStates {
		breakers[state] = 0
	}
	for state, n := range s.Breakers {
		breakers[known(state, feedBreakerStates)] += n
	}
	for state, n := range breakers {
		ch <- prometheus.MustNewConstMetric(c.breakers, prometheus.GaugeValue, float64(n), state)
	}
}

// snapshot reads the source, reporting false when none is set.
func (c *statusCollector) snapshot() (Snapshot, bool) {
	source := c.source.Load()
	if source == nil || *source == nil {
		return Snapshot{}, false
	}
	return (*source)(), true
}

// feedBreakerStates are the values of the state label on breaker_feeds.
var feedBreakerStates = append(append([]string(nil), breakerStates...), "disabled")

// SnapshotFromFeeds counts the hub's feeds into a Snapshot, leaving
// AuthenticatedUsers for the caller. A stream counts as open while its feed
// is on SSE: up and delivering. FeedStatus says no more; a session id is
// no proof, as it outlives the stream across reconnects.
func SnapshotFromFeeds(feeds []hub.FeedStatus) Snapshot {
	s := Snapshot{
		FeedsBySource: make(map[string]int, len(feedSources)),
		Breakers:      make(map[string]int, len(feedBreakerStates)),
	}
	for _, f := range feeds {
		s.FeedsBySource[f.Source]++
		s.Breakers[f.Breaker]++
		if f.Source == string(hub.SourceSSE) {
			s.OpenStreams++
		}
	}
	return s
}
