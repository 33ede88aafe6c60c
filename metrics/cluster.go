package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nellis-edge/gateway/hub"
)

// clusterCollectors count what cluster mode's feeds do: which products
// this node owns, ownership changing hands, and the fenced appends to the
// feed log. Without `cluster` they stay at zero.
type clusterCollectors struct {
	owned      prometheus.Gauge
	standalone prometheus.Gauge
	handovers  *knownCounterVec // reason
	appends    *knownCounterVec // result
	logReads   *knownCounterVec // result
	crossNode  prometheus.Histogram
}

// handoverReasons are the values of the reason label on handovers.
var handoverReasons = []string{"claimed", hub.HandoverReleased, hub.HandoverHanded, hub.HandoverDeposed, hub.HandoverLapsed, hub.HandoverError, other}

// logReadResults are the values of the result label on log reads.
var logReadResults = []string{"ok", "failed"}

// appendResults are the values of the result label on appends.
var appendResults = []string{hub.AppendOK, hub.AppendDeposed, hub.AppendLapsed, hub.AppendError, other}

func newClusterCollectors() *clusterCollectors {
	return &clusterCollectors{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "cluster_owned_feeds",
			Help: "Products whose upstream this node owns in cluster mode: it streams or polls them and appends their changes to the feed log.",
		}),
		standalone: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "cluster_standalone",
			Help: "1 while this node, in cluster mode, has been without NATS for over a lease and serves its own clients standalone (auto-bid paused, readiness 503); else 0.",
		}),
		handovers: knownCounters("cluster_handovers_total",
			"Products this node began owning (claimed) or stopped owning, by reason: released (no interest, or stopping), handed (to a node the rendezvous hash ranks higher, which asked for it), deposed (another node took over), lapsed (the lease could not be renewed in time), error (an append failed).",
			"reason", handoverReasons),
		appends: knownCounters("cluster_appends_total",
			"Owned changes appended to the feed log, by result: ok, deposed (refused by the log's fence: another node appended since), lapsed (not sent: the lease had run out), error.",
			"result", appendResults),
		logReads: knownCounters("cluster_log_reads_total",
			"Reads of a product's feed log by this node's feeds (a new feed's read of the log's past, a read after a gap, a retry), by result: ok, failed (tried again later; until one succeeds the feed has no state and resuming clients get recovered false).",
			"result", logReadResults),
		crossNode: histogram("cluster_cross_node_delivery_seconds",
			"Time from the owning node's receipt of a change's upstream bytes (the log entry's header, by the owner's clock) to its publication on this node, which read it from the log: what a change gains crossing nodes, the clocks' skew included. Changes read back from the log's past are not timed.",
			latencyBuckets),
	}
}

func (c *clusterCollectors) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.owned, c.standalone, c.handovers, c.appends, c.logReads, c.crossNode}
}

func (m *Metrics) ownership(_ int64, owned bool, reason string) {
	if owned {
		m.cluster.owned.Inc()
	} else {
		m.cluster.owned.Dec()
	}
	m.cluster.handovers.inc(reason)
}

func (m *Metrics) standalone(alone bool) {
	if alone {
		m.cluster.standalone.Set(1)
	} else {
		m.cluster.standalone.Set(0)
	}
}

// logPublished times a change published from another node's log; a
// clock behind the owner's counts as zero.
func (m *Metrics) logPublished(receivedAt time.Time) {
	if receivedAt.IsZero() {
		return
	}
	m.cluster.crossNode.Observe(max(m.now().Sub(receivedAt), 0).Seconds())
}

func (m *Metrics) sharedAppend(_ int64, result string) {
	m.cluster.appends.inc(result)
}

func (m *Metrics) logRead(_ int64, ok bool) {
	if ok {
		m.cluster.logReads.inc("ok")
	} else {
		m.cluster.logReads.inc("failed")
	}
}
