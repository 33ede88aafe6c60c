package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nellis-edge/gateway/bidding"
	"github.com/nellis-edge/gateway/nellis"
)

// bidStrategies and bidResults bound the bid metrics' labels.
var (
	bidStrategies = []string{bidding.StrategyManual, bidding.StrategyAuto, bidding.StrategySniping, other}
	bidResults    = []string{
		string(nellis.BidAccepted), string(nellis.BidOutbid), string(nellis.BidTooLow),
		string(nellis.BidDuplicate), string(nellis.BidEnded), string(nellis.BidAuthRequired),
		string(nellis.BidRejected), string(nellis.BidUpstreamError), "dry_run", other,
	}
)

// bidCollectors count the bids the gateway places for users.
type bidCollectors struct {
	results    *prometheus.CounterVec   // strategy, result
	latency    *prometheus.HistogramVec // strategy
	maxReached *prometheus.CounterVec   // strategy
	// conflicts counts the bids a cluster node did not send because the
	// lot's record moved on under it: a stalled or deposed owner's late
	// bids. Without `cluster` it stays at zero.
	conflicts *knownCounterVec // strategy
}

func newBidCollectors() *bidCollectors {
	c := &bidCollectors{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bids_total",
			Help: "Bids sent to Nellis (or decided in a dry run), by strategy (manual, auto, sniping) and result.",
		}, []string{"strategy", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "bid_duration_seconds",
			Help:    "Round trip of a bid to Nellis, by strategy.",
			Buckets: pollBuckets,
		}, []string{"strategy"}),
		maxReached: counterVec("bid_max_reached_total",
			"Auctions whose next bid passed the user's maximum, so auto-bidding stopped, by strategy.",
			"strategy", bidStrategies),
		conflicts: knownCounters("cluster_intent_conflicts_total",
			"Bids not sent in cluster mode because the lot's bid record had changed since this node read it (another node owns the lot or took it over meanwhile), by strategy.",
			"strategy", bidStrategies),
	}
	for _, s := range bidStrategies {
		c.latency.WithLabelValues(s)
		for _, r := range bidResults {
			c.results.WithLabelValues(s, r)
		}
	}
	return c
}

// BiddingHooks are the bidding engine's callbacks into these metrics.
func (m *Metrics) BiddingHooks() bidding.Hooks {
	c := m.bids
	return bidding.Hooks{
		BidResult: func(strategy, result string) {
			c.results.WithLabelValues(known(strategy, bidStrategies), known(result, bidResults)).Inc()
		},
		BidLatency: func(strategy string, d time.Duration) {
			c.latency.WithLabelValues(known(strategy, bidStrategies)).Observe(d.Seconds())
		},
		MaxReached: func(strategy string) {
			c.maxReached.WithLabelValues(known(strategy, bidStrategies)).Inc()
		},
		IntentConflict: c.conflicts.inc,
	}
}
