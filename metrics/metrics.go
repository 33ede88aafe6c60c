package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "nellis"

// latencyBuckets, in seconds, resolve the 0.1 ms-1 s range where a
// healthy gateway delivers: a change should cross it in well under a
// millisecond, and anything past a second is an incident.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5,
}

// pollBuckets, in seconds, cover a Nellis snapshot fetch: tens of
// milliseconds when healthy up to the client's timeout.
var pollBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics holds the gateway's collectors. Create one per process with New,
// Register it into every config's registry, and plug HubHooks and
// RelayHooks into the hub and the relay. It is safe for concurrent use.
type Metrics struct {
	// Upstream streams.
	streamAttempts  prometheus.Counter
	streamSuccesses prometheus.Counter
	streamFailures  *knownCounterVec // reason
	streamEvents    *knownCounterVec // type
	decodeErrors    prometheus.Counter
	reconnects      prometheus.Counter

	// Breaker, polls, changes.
	breakerTransitions  *prometheus.CounterVec // from, to
	fallbackActivations prometheus.Counter
	polls               *prometheus.CounterVec // result
	pollDuration        prometheus.Histogram
	reconcileChanges    prometheus.Counter
	published           *knownCounterVec // source
	processingTime      prometheus.Histogram

	// WebSocket relay.
	wsOpen            prometheus.Gauge
	wsOpened          prometheus.Counter
	wsClosed          *prometheus.CounterVec // code
	wsAuthentications prometheus.Counter
	wsMessagesIn      *knownCounterVec // type
	wsMessagesOut     *knownCounterVec // type
	wsCoalesced       prometheus.Counter
	wsDropped         *knownCounterVec // reason
	wsSlowCloses      prometheus.Counter
	wsUpgradeRefusals *prometheus.CounterVec // status
	deliveryLatency   prometheus.Histogram
	quarantined       prometheus.Counter
	usersStored       prometheus.Gauge

	// Bids placed for users.
	bids *bidCollectors

	// Cluster mode's feeds.
	cluster *clusterCollectors

	// Gauges read from the lead's status source on every scrape.
	status *statusCollector

	// processing holds event processing times in milliseconds for the
	// /metrics/sse JSON, which wants percentiles a histogram cannot give.
	processing samples

	now func() time.Time
}

// New creates the collectors, every labelled series at zero so that
// dashboards and rate() see a series before its first event.
func New() *Metrics {
	return &Metrics{
		streamAttempts: counter("upstream_stream_attempts_total",
			"Upstream SSE connection attempts. An attempt ends either with the stream up or with a dial or status failure."),
		streamSuccesses: counter("upstream_stream_successes_total",
			"Upstream SSE connection attempts answered with a 200 text/event-stream."),
		streamFailures: knownCounters("upstream_stream_failures_total",
			"Upstream SSE streams that failed to open or ended, by reason: dial and status fail an attempt; eof, stall, decode and too_large end a live stream.",
			"reason", streamReasons),
		streamEvents: knownCounters("upstream_events_total",
			"Upstream SSE events dispatched, by type. Pings arrive about once a second per stream.",
			"type", kindLabels()),
		decodeErrors: counter("upstream_decode_errors_total",
			"Upstream SSE events dropped because their payload could not be decoded or was too large."),
		reconnects: counter("upstream_reconnects_total",
			"Upstream SSE reconnections scheduled after a stream ended or failed to open."),

		breakerTransitions: breakerTransitionVec(),
		fallbackActivations: counter("fallback_activations_total",
			"Times a feed's breaker opened and snapshot polling took over from its stream."),
		polls: counterVec("polls_total",
			"Snapshot fetches (polls and gap reconciliations), by result.",
			"result", pollResults),
		pollDuration: histogram("poll_duration_seconds",
			"Time a snapshot fetch took, whatever its result.", pollBuckets),
		reconcileChanges: counter("reconcile_changes_total",
			"Gap-healing snapshots that found a change the stream had missed."),
		published: knownCounters("changes_published_total",
			"Product changes handed to subscribers, by source.",
			"source", changeSources),
		processingTime: histogram("change_processing_seconds",
			"Time from the upstream bytes' arrival to a change's publication to subscribers.", latencyBuckets),

		wsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "ws_connections_open",
			Help: "WebSocket connections open now.",
		}),
		wsOpened: counter("ws_connections_opened_total",
			"WebSocket connections accepted."),
		wsClosed: counterVec("ws_connections_closed_total",
			"WebSocket connections closed, by close code: the code for 1000-1015, else its class (3xxx, 4xxx) or other.",
			"code", closeCodeLabels()),
		wsAuthentications: counter("ws_authentications_total",
			"Successful WebSocket authentications."),
		wsMessagesIn: knownCounters("ws_messages_received_total",
			"Messages received from WebSocket clients, by type; invalid for undecodable ones.",
			"type", clientMessageTypes),
		wsMessagesOut: knownCounters("ws_messages_sent_total",
			"Messages written to WebSocket clients, by type.",
			"type", serverMessageTypes),
		wsCoalesced: counter("ws_coalesced_frames_total",
			"Queued frames replaced by a newer frame for the same auction before they were written."),
		wsDropped: knownCounters("ws_dropped_frames_total",
			"Frames dropped, by reason: queue_full (outbound, slow client), flood and rate (inbound, over the client's limit).",
			"reason", dropReasons),
		wsSlowCloses: counter("ws_slow_client_closes_total",
			"WebSocket connections closed because the client stopped reading."),
		wsUpgradeRefusals: counterVec("ws_upgrade_refusals_total",
			"WebSocket upgrade requests refused, by HTTP status.",
			"status", nil),
		deliveryLatency: histogram("delivery_latency_seconds",
			"Time from the upstream bytes' arrival to the write of the change to a client socket.", latencyBuckets),
		quarantined: counter("user_records_quarantined_total",
			"Users' stored records that could not be read and were set aside under nellis/quarantine/; each such user started empty."),
		usersStored: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "users_stored",
			Help: "User records in storage, counted by the user_retention sweep (at start, then daily)."}),

		bids:    newBidCollectors(),
		cluster: newClusterCollectors(),
		status:  newStatusCollector(),
		now:     time.Now,
	}
}

// collectors lists everything Register adds, each exactly once.
func (m *Metrics) collectors() []prometheus.Collector {
	return append(m.cluster.collectors(),
		m.streamAttempts, m.streamSuccesses, m.streamFailures, m.streamEvents,
		m.decodeErrors, m.reconnects,
		m.breakerTransitions, m.fallbackActivations, m.polls, m.pollDuration,
		m.reconcileChanges, m.published, m.processingTime,
		m.wsOpen, m.wsOpened, m.wsClosed, m.wsAuthentications, m.wsMessagesIn,
		m.wsMessagesOut, m.wsCoalesced, m.wsDropped, m.wsSlowCloses,
		m.wsUpgradeRefusals, m.deliveryLatency, m.quarantined, m.usersStored,
		m.bids.results, m.bids.latency, m.bids.maxReached, m.bids.conflicts,
		m.status,
	)
}

// Register adds every collector to reg. Call it on every config load with
// Caddy's ctx.GetMetricsRegistry(), which is new each time: the collectors
// are the same, so counts continue. A collector reg already holds is not an
// error; another collector under one of our names is.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	if reg == nil {
		return errors.New("metrics: register: nil registerer")
	}
	var errs []error
	for _, c := range m.collectors() {
		err := reg.Register(c)
		var dup prometheus.AlreadyRegisteredError
		if errors.As(err, &dup) && dup.ExistingCollector == c {
			continue
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("metrics: register: %w", err)
	}
	return nil
}

// SetStatusSource sets the function whose Snapshot the gauges of feeds,
// open streams, breaker states and authenticated users report on each
// scrape. Until it is set those gauges are absent rather than a misleading
// zero. It may be called again, on a reload, to replace the source.
func (m *Metrics) SetStatusSource(source func() Snapshot) {
	m.status.source.Store(&source)
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

// counterVec creates a counter with one label, with a zero series for each
// of values.
func counterVec(name, help, label string, values []string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, []string{label})
	for _, value := range values {
		v.WithLabelValues(value)
	}
	return v
}

// knownCounterVec is a one-label counter whose label takes a fixed set of
// values, other among them. Its series are resolved once, so counting an
// event on a hot path is a map lookup rather than WithLabelValues' label
// hashing under the vector's lock.
type knownCounterVec struct {
	*prometheus.CounterVec
	series map[string]prometheus.Counter
}

// knownCounters creates a counter with one label, with a zero series for
// each of values, which must include other.
func knownCounters(name, help, label string, values []string) *knownCounterVec {
	v := &knownCounterVec{
		CounterVec: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, []string{label}),
		series:     make(map[string]prometheus.Counter, len(values)),
	}
	for _, value := range values {
		v.series[value] = v.WithLabelValues(value)
	}
	return v
}

// inc counts one event under value, or under other when value is not one
// of the known values.
func (v *knownCounterVec) inc(value string) {
	c, ok := v.series[value]
	if !ok {
		c = v.series[other]
	}
	c.Inc()
}

func breakerTransitionVec() *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "breaker_transitions_total",
		Help: "Stream circuit breaker state changes, by from and to state.",
	}, []string{"from", "to"})
	for _, from := range breakerStates {
		for _, to := range breakerStates {
			if from != to {
				v.WithLabelValues(from, to)
			}
		}
	}
	return v
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
}

// kindLabels are the type label values of upstream events.
func kindLabels() []string {
	labels := make([]string, len(eventKinds))
	for i, k := range eventKinds {
		labels[i] = k.String()
	}
	return labels
}

// closeCodeLabels are the close codes created at zero: the ones the relay
// and browsers commonly close with. Others appear on first use, still
// within closeCodeLabel's bounded set.
func closeCodeLabels() []string {
	return []string{"1000", "1001", "1006", "1008", "1009", "1011", "4xxx"}
}
