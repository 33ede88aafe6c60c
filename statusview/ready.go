package statusview

import "fmt"

// DefaultMaxStaleShare is the share of feeds that may be stale while the
// gateway still reports ready: more than half of them without a working
// source means bidders mostly see old prices, and a load balancer should
// prefer another instance. Fewer is a per-lot problem that readiness
// cannot fix: the metrics and /nellis/feeds show which lots.
const DefaultMaxStaleShare = 0.5

// Readiness is the verdict of /nellis/health/ready.
type Readiness struct {
	Ready bool `json:"ready"`
	// Reason says why the gateway is not ready; empty when it is.
	Reason string `json:"reason,omitempty"`
	Feeds  int    `json:"feeds"`
	Stale  int    `json:"stale"`
}

// ReasonStandalone is the reason a node cut off from its cluster is not
// ready: its clients still get prices, but no bids, and its lots' other
// clients are better served by a node that reaches NATS.
const ReasonStandalone = "cluster unavailable: no NATS or JetStream answer for over a lease; serving this node's clients standalone, auto-bid paused"

// Ready judges a report: ready once the app has started, the node is not
// cut off from its cluster, and no more than maxStaleShare of its feeds
// are stale. No feeds at all is ready: nothing is being watched, so
// nothing is old.
func Ready(r Report, maxStaleShare float64) Readiness {
	v := Readiness{Ready: true, Feeds: r.Totals.Feeds, Stale: r.Totals.Stale}
	switch {
	case !r.Started:
		v.Ready, v.Reason = false, "nellis app not started"
	case r.Standalone:
		v.Ready, v.Reason = false, ReasonStandalone
	case v.Feeds > 0 && float64(v.Stale) > maxStaleShare*float64(v.Feeds):
		v.Ready = false
		v.Reason = fmt.Sprintf("%d of %d feeds stale (more than %g%%): snapshots failing without a healthy stream",
			v.Stale, v.Feeds, maxStaleShare*100)
	}
	return v
}
