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
