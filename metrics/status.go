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
	// "sse", "poll" or, on a cluster reader, "log". Other keys are
	// reported as "other".
	FeedsBySource map[string]int
	// Breakers counts feeds by the state of their stream breaker, as
	// hub.FeedStatus names it: "closed", "open", "half-open", or "disabled"
	// when SSE is off. Other keys are reported as "other".
	Breakers map[string]int
	// AuthenticatedUsers is the number of distinct users with at least one
	// authenticated WebSocket connection.
	AuthenticatedUsers int
	// MaxStaleness is, by source ("sse", "poll", "log"), the oldest age in
	// seconds of what a feed knows (hub.FeedStatus.Staleness): with
	// use_sse N% it compares the lots on streams with the polled ones.
	MaxStaleness map[string]float64
	// PollBudget is the hub's poll budget (hub.Hub.PollBudget), for the
	// gauges saying whether poll_rate covers every polled lot.
	PollBudget hub.PollBudget
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
	staleness   *prometheus.Desc
	budgetShort *prometheus.Desc
	interval    *prometheus.Desc
}

func newStatusCollector() *statusCollector {
	return &statusCollector{
		openStreams: prometheus.NewDesc(namespace+"_upstream_streams_open",
			"Upstream SSE streams up now.", nil, nil),
		feeds: prometheus.NewDesc(namespace+"_feeds",
			"Product feeds by where their prices come from now: sse, poll, or log (a cluster reader fed by the owner's log).", []string{"source"}, nil),
		breakers: prometheus.NewDesc(namespace+"_breaker_feeds",
			"Product feeds by the state of their stream circuit breaker: closed, open, half-open, or disabled when SSE is off.", []string{"state"}, nil),
		users: prometheus.NewDesc(namespace+"_ws_authenticated_users",
			"Distinct users with at least one authenticated WebSocket connection now.", nil, nil),
		staleness: prometheus.NewDesc(namespace+"_feed_staleness_max_seconds",
			"Age of the stalest feed's last good snapshot or stream byte, by where its prices come from now: sse, poll, or log (a cluster reader).", []string{"source"}, nil),
		budgetShort: prometheus.NewDesc(namespace+"_poll_budget_short",
			"1 while poll_rate cannot poll every polled lot at poll_interval (or poll_interval_closing in its closing window), else 0.", nil, nil),
		interval: prometheus.NewDesc(namespace+"_poll_budget_interval_seconds",
			"How often poll_rate lets a polled lot outside its closing window be polled now: its expected staleness; -1 for never.", nil, nil),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.openStreams
	ch <- c.feeds
	ch <- c.breakers
	ch <- c.users
	ch <- c.staleness
	ch <- c.budgetShort
	ch <- c.interval
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

	stale := make(map[string]float64, len(feedSources)+1)
	for _, source := range feedSources {
		stale[source] = 0
	}
	for source, v := range s.MaxStaleness {
		k := known(source, feedSources)
		stale[k] = max(stale[k], v)
	}
	for source, v := range stale {
		ch <- prometheus.MustNewConstMetric(c.staleness, prometheus.GaugeValue, v, source)
	}
	short := 0.0
	if s.PollBudget.Short {
		short = 1
	}
	ch <- prometheus.MustNewConstMetric(c.budgetShort, prometheus.GaugeValue, short)
	ch <- prometheus.MustNewConstMetric(c.interval, prometheus.GaugeValue, s.PollBudget.Interval)
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
		MaxStaleness:  make(map[string]float64, len(feedSources)),
	}
	for _, f := range feeds {
		s.FeedsBySource[f.Source]++
		s.MaxStaleness[f.Source] = max(s.MaxStaleness[f.Source], f.Staleness)
		s.Breakers[f.Breaker]++
		if f.Source == string(hub.SourceSSE) {
			s.OpenStreams++
		}
	}
	return s
}
