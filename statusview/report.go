// Package statusview is the gateway's live status as an operator sees it:
// the report the admin API serves at /nellis/feeds, built from the hub's
// feeds, the relay's counts and the latency metrics; the readiness verdict
// drawn from it; and its rendering as the text table of `caddy
// nellis-status`. Everything here is a pure function of its inputs.
package statusview

import (
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/metrics"
	"github.com/nellis-edge/gateway/wsrelay"
)

// Report is the answer of GET /nellis/feeds on the admin API.
type Report struct {
	// At is the gateway's clock when it took the report; the ages and
	// next-poll times of the feeds are relative to it.
	At time.Time `json:"at"`
	// Started is true once the nellis app has started: the relay exists and
	// clients are being served.
	Started bool `json:"started"`
	// Standalone is true while, in cluster mode, the node has been
	// without NATS for over a lease: it serves its own clients alone and
	// bids on nothing (hub.Hub.Standalone).
	Standalone bool    `json:"standalone,omitempty"`
	Totals     Totals  `json:"totals"`
	Latency    Latency `json:"latency"`
	// PollBudget says whether poll_rate covers every polled lot, and how
	// stale a polled lot may grow (each feed's expected_staleness_s);
	// absent where the caller has no hub to ask.
	PollBudget *hub.PollBudget `json:"poll_budget,omitempty"`
	// Feeds has one entry per product with a feed, by product id.
	Feeds []hub.FeedStatus `json:"feeds"`
	// QuarantinedRecords lists the users' stored records that could not be
	// read at load: each was copied aside and its user started empty.
	QuarantinedRecords []wsrelay.QuarantinedRecord `json:"quarantined_records,omitempty"`
}

// Totals sum up the feeds and the relay.
type Totals struct {
	Feeds int `json:"feeds"`
	// OpenStreams counts upstream SSE streams up and delivering, as the
	// nellis_upstream_streams_open gauge does.
	OpenStreams int `json:"open_streams"`
	// FeedsBySource counts feeds by where their prices come from now.
	FeedsBySource map[string]int `json:"feeds_by_source"`
	// Breakers counts feeds by the state of their stream breaker.
	Breakers map[string]int `json:"breakers"`
	// Stale counts feeds without a working source (see Stale).
	Stale       int `json:"stale"`
	Subscribers int `json:"subscribers"`

	// The relay: sockets open, sockets authenticated, users known and the
	// auctions they monitor. Zero before the app has started.
	Connections       int `json:"connections"`
	Authenticated     int `json:"authenticated"`
	Users             int `json:"users"`
	MonitoredAuctions int `json:"monitored_auctions"`
	// Parked counts idle sockets waiting without a reader goroutine.
	Parked int `json:"parked"`
	// StoredUsers counts the user records in storage at the last
	// user_retention sweep (at start, then daily); absent before it.
	StoredUsers *int `json:"stored_users,omitempty"`
}

// Latency is the latency of changes on their way to clients. Metrics have
// no product label, so it is the gateway's, not a feed's.
type Latency struct {
	// Delivery is upstream receive to socket write, every write since the
	// process started; the difference of two reports (Histogram.Since)
	// is the latency between them.
	Delivery metrics.Histogram `json:"delivery"`
	// Processing is upstream receive to publication to subscribers, over
	// the most recent changes.
	Processing metrics.Recent `json:"processing"`
}

// Stale reports whether a feed has no working source: snapshots are failing
// (the hub marks it degraded) and no healthy stream feeds it either. A feed
// on a healthy stream is fresh even while its safety-net snapshots fail,
// and a polled feed whose snapshots succeed is fresh to within its poll
// interval.
func Stale(f hub.FeedStatus) bool {
	return f.Degraded != "" && f.Source != string(hub.SourceSSE)
}

// NewReport builds a report. relay is nil before the app has started.
func NewReport(at time.Time, feeds []hub.FeedStatus, relay *wsrelay.Stats, latency Latency) Report {
	if feeds == nil {
		feeds = []hub.FeedStatus{} // an empty list, not null, in JSON
	}
	snap := metrics.SnapshotFromFeeds(feeds)
	r := Report{
		At:      at,
		Started: relay != nil,
		Latency: latency,
		Feeds:   feeds,
		Totals: Totals{
			Feeds:         len(feeds),
			OpenStreams:   snap.OpenStreams,
			FeedsBySource: snap.FeedsBySource,
			Breakers:      snap.Breakers,
		},
	}
	for _, f := range feeds {
		r.Totals.Subscribers += f.Subscribers
		if Stale(f) {
			r.Totals.Stale++
		}
	}
	if relay != nil {
		r.Totals.Connections = relay.Connections
		r.Totals.Authenticated = relay.Authenticated
		r.Totals.Users = relay.Users
		r.Totals.MonitoredAuctions = relay.MonitoredAuctions
		r.Totals.Parked = relay.Parked
		r.Totals.StoredUsers = relay.StoredUsers
		r.QuarantinedRecords = relay.Quarantined
	}
	return r
}
