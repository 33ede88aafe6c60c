package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nellis-edge/gateway/hub"
)

// Owned feeds go up and down with claims and handovers; handovers and
// appends are counted by their few reasons and results, an unknown one
// under other, never by product.
func TestHubHooksCountClusterOwnershipAndAppends(t *testing.T) {
	m := New()
	h := m.HubHooks()
	h.Ownership(1, true, "claimed")
	h.Ownership(2, true, "claimed")
	h.Ownership(3, true, "claimed")
	h.Ownership(1, false, hub.HandoverDeposed)
	h.Ownership(2, false, "surprise")
	h.Ownership(4, true, "claimed")
	h.Ownership(4, false, hub.HandoverHanded)
	h.SharedAppend(3, hub.AppendOK)
	h.SharedAppend(3, hub.AppendOK)
	h.SharedAppend(1, hub.AppendDeposed)
	h.SharedAppend(2, hub.AppendLapsed)

	expectMetrics(t, registered(t, m), `
# HELP nellis_cluster_owned_feeds Products whose upstream this node owns in cluster mode: it streams or polls them and appends their changes to the feed log.
# TYPE nellis_cluster_owned_feeds gauge
nellis_cluster_owned_feeds 1
# HELP nellis_cluster_handovers_total Products this node began owning (claimed) or stopped owning, by reason: released (no interest, or stopping), handed (to a node the rendezvous hash ranks higher, which asked for it), deposed (another node took over), lapsed (the lease could not be renewed in time), error (an append failed).
# TYPE nellis_cluster_handovers_total counter
nellis_cluster_handovers_total{reason="claimed"} 4
nellis_cluster_handovers_total{reason="deposed"} 1
nellis_cluster_handovers_total{reason="error"} 0
nellis_cluster_handovers_total{reason="handed"} 1
nellis_cluster_handovers_total{reason="lapsed"} 0
nellis_cluster_handovers_total{reason="other"} 1
nellis_cluster_handovers_total{reason="released"} 0
# HELP nellis_cluster_appends_total Owned changes appended to the feed log, by result: ok, deposed (refused by the log's fence: another node appended since), lapsed (not sent: the lease had run out), error.
# TYPE nellis_cluster_appends_total counter
nellis_cluster_appends_total{result="deposed"} 1
nellis_cluster_appends_total{result="error"} 0
nellis_cluster_appends_total{result="lapsed"} 1
nellis_cluster_appends_total{result="ok"} 2
nellis_cluster_appends_total{result="other"} 0
`, "nellis_cluster_owned_feeds", "nellis_cluster_handovers_total", "nellis_cluster_appends_total")
}

// The standalone gauge follows the hub's reports of bus loss.
func TestHubHooksShowStandalone(t *testing.T) {
	m := New()
	h := m.HubHooks()
	want := func(v string) {
		t.Helper()
		expectMetrics(t, registered(t, m), `
# HELP nellis_cluster_standalone 1 while this node, in cluster mode, has been without NATS for over a lease and serves its own clients standalone (auto-bid paused, readiness 503); else 0.
# TYPE nellis_cluster_standalone gauge
nellis_cluster_standalone `+v+`
`, "nellis_cluster_standalone")
	}
	want("0")
	h.Standalone(true)
	want("1")
	h.Standalone(false)
	want("0")
}

// Changes read from another node's log are timed from the owner's receipt
// to their publication here, into one histogram without a product label;
// a clock behind the owner's counts as zero, no receive time not at all.
func TestHubHooksTimeCrossNodeDeliveries(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	m := New()
	m.now = func() time.Time { return now }
	h := m.HubHooks()
	h.LogPublished(now.Add(-800 * time.Microsecond))
	h.LogPublished(now.Add(-30 * time.Millisecond))
	h.LogPublished(now.Add(time.Second)) // the owner's clock ahead
	h.LogPublished(time.Time{})
	expectHistogram(t, m.cluster.crossNode, 3, 0.0308, map[float64]uint64{
		0.0001: 1, 0.001: 2, 0.025: 2, 0.05: 3, 5: 3,
	})
	n, err := testutil.GatherAndCount(registered(t, m), "nellis_cluster_cross_node_delivery_seconds")
	if err != nil || n != 1 {
		t.Fatalf("the cross-node histogram registered as %d series (%v), want one without labels", n, err)
	}
}

// A feed's reads of the log are counted by result, never by product.
func TestHubHooksCountLogReads(t *testing.T) {
	m := New()
	h := m.HubHooks()
	h.LogRead(1, false)
	h.LogRead(1, false)
	h.LogRead(1, true)
	h.LogRead(2, true)
	expectMetrics(t, registered(t, m), `
# HELP nellis_cluster_log_reads_total Reads of a product's feed log by this node's feeds (a new feed's read of the log's past, a read after a gap, a retry), by result: ok, failed (tried again later; until one succeeds the feed has no state and resuming clients get recovered false).
# TYPE nellis_cluster_log_reads_total counter
nellis_cluster_log_reads_total{result="failed"} 2
nellis_cluster_log_reads_total{result="ok"} 2
`, "nellis_cluster_log_reads_total")
}
