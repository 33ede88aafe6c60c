package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestBiddingHooks: each bid moves its strategy and result; an unknown
// strategy or result falls into "other" rather than minting a label.
func TestBiddingHooks(t *testing.T) {
	m := New()
	h := m.BiddingHooks()
	h.BidResult("sniping", "accepted")
	h.BidResult("auto", "outbid")
	h.BidResult("auto", "outbid")
	h.BidResult("someone's-user-name", "surprise")
	h.BidLatency("sniping", 120*time.Millisecond)
	h.MaxReached("auto")

	for _, tc := range []struct {
		strategy, result string
		want             float64
	}{
		{"sniping", "accepted", 1}, {"auto", "outbid", 2}, {"other", "other", 1}, {"manual", "accepted", 0},
	} {
		if got := testutil.ToFloat64(m.bids.results.WithLabelValues(tc.strategy, tc.result)); got != tc.want {
			t.Errorf("bids_total{%s,%s} = %v, want %v", tc.strategy, tc.result, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(m.bids.maxReached.WithLabelValues("auto")); got != 1 {
		t.Errorf("bid_max_reached_total{auto} = %v", got)
	}
	if n := testutil.CollectAndCount(m.bids.latency); n != len(bidStrategies) {
		t.Errorf("bid_duration_seconds has %d series, want one per strategy", n)
	}
	for _, c := range []prometheus.Collector{m.bids.results, m.bids.latency, m.bids.maxReached} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", err, problems)
		}
	}
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if strings.Contains(l.GetValue(), "someone") || strings.Contains(l.GetValue(), "surprise") {
					t.Errorf("%s: a raw value became a label: %s=%s", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestIntentConflictsCountByStrategy: a cluster node's refused late bid
// moves nellis_cluster_intent_conflicts_total under its strategy; an
// unknown strategy counts as other rather than minting a label.
func TestIntentConflictsCountByStrategy(t *testing.T) {
	m := New()
	h := m.BiddingHooks()
	if h.IntentConflict == nil {
		t.Fatal("the bidding hooks do not count intent conflicts")
	}
	h.IntentConflict("sniping")
	h.IntentConflict("sniping")
	h.IntentConflict("manual")
	h.IntentConflict("alice@example.com")
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP nellis_cluster_intent_conflicts_total Bids not sent in cluster mode because the lot's bid record had changed since this node read it (another node owns the lot or took it over meanwhile), by strategy.
# TYPE nellis_cluster_intent_conflicts_total counter
nellis_cluster_intent_conflicts_total{strategy="auto"} 0
nellis_cluster_intent_conflicts_total{strategy="manual"} 1
nellis_cluster_intent_conflicts_total{strategy="other"} 1
nellis_cluster_intent_conflicts_total{strategy="sniping"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "nellis_cluster_intent_conflicts_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(m.bids.conflicts); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}
