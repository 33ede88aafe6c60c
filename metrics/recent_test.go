package metrics

import (
	"math"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
)

func TestDeliveryLatencyReadsTheHistogram(t *testing.T) {
	m := New()
	if h := m.DeliveryLatency(); h.Count != 0 || len(h.Buckets) != len(latencyBuckets) {
		t.Fatalf("fresh reading: %+v, want no observations over %d buckets", h, len(latencyBuckets))
	}
	deliver := m.RelayHooks().DeliveryLatency
	deliver(300 * time.Microsecond)
	deliver(2 * time.Millisecond)
	deliver(10 * time.Second) // above every bucket

	h := m.DeliveryLatency()
	if h.Count != 3 {
		t.Fatalf("count %d, want 3", h.Count)
	}
	if math.Abs(h.SumSeconds-10.0023) > 1e-9 {
		t.Errorf("sum %v, want 10.0023", h.SumSeconds)
	}
	cum := map[float64]uint64{}
	for _, b := range h.Buckets {
		cum[b.UpperBound] = b.Count
	}
	if cum[0.00025] != 0 || cum[0.0005] != 1 || cum[0.0025] != 2 || cum[5] != 2 {
		t.Errorf("cumulative buckets %v", cum)
	}
}

func TestHistogramSinceAndQuantile(t *testing.T) {
	m := New()
	deliver := m.RelayHooks().DeliveryLatency
	for range 100 {
		deliver(4 * time.Second) // an old incident
	}
	before := m.DeliveryLatency()
	for range 100 {
		deliver(200 * time.Microsecond)
	}
	now := m.DeliveryLatency()

	recent := now.Since(before)
	if recent.Count != 100 {
		t.Fatalf("recent count %d, want 100", recent.Count)
	}
	p99, ok := recent.Quantile(0.99)
	if !ok || p99 > 0.00025 || p99 <= 0.0001 {
		t.Errorf("recent p99 %v %v, want inside the 0.1-0.25 ms bucket", p99, ok)
	}
	// Since start the incident dominates the top half.
	if p99, _ := now.Quantile(0.99); p99 < 2.5 {
		t.Errorf("since-start p99 %v, want within the 2.5-5 s bucket", p99)
	}
	// A reading from before a restart is not subtracted.
	if got := before.Since(now); got.Count != before.Count {
		t.Errorf("since a later reading: count %d, want the reading itself (%d)", got.Count, before.Count)
	}
}

func TestQuantileMatchesHistogramQuantile(t *testing.T) {
	h := Histogram{Count: 10, Buckets: []Bucket{{0.1, 2}, {0.2, 6}, {0.4, 8}}}
	for _, c := range []struct {
		q    float64
		want float64
	}{
		{0, 0},        // the lower edge of the first bucket with observations
		{0.1, 0.05},   // rank 1 of 2 in (0, 0.1]
		{0.4, 0.15},   // rank 4: 2 of 4 in (0.1, 0.2]
		{0.8, 0.4},    // rank 8: the top of (0.2, 0.4]
		{0.95, 0.4},   // above every finite bucket: the highest bound
		{1, 0.4},      //
		{0.6, 0.2},    // rank 6: exactly the top of (0.1, 0.2]
		{0.7, 0.3},    // rank 7: half way through (0.2, 0.4]
		{0.65, 0.25},  //
		{0.15, 0.075}, //
	} {
		got, ok := h.Quantile(c.q)
		if !ok || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Quantile(%v) = %v %v, want %v", c.q, got, ok, c.want)
		}
	}
	if _, ok := (Histogram{Buckets: h.Buckets}).Quantile(0.5); ok {
		t.Error("an empty histogram has a quantile")
	}
	if _, ok := h.Quantile(1.5); ok {
		t.Error("q above 1 accepted")
	}
}

func TestRecentProcessing(t *testing.T) {
	m := New()
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	if r := m.RecentProcessing(); r.Samples != 0 || r.P50 != 0 || r.P99 != 0 {
		t.Fatalf("before any change: %+v", r)
	}
	publish := m.HubHooks().Published
	for i := range 100 {
		publish(&hub.Change{Source: hub.SourceSSE, ReceivedAt: now.Add(-time.Duration(i+1) * time.Millisecond)})
	}
	r := m.RecentProcessing()
	if r.Samples != 100 || math.Abs(r.P50-0.050) > 1e-9 || math.Abs(r.P99-0.099) > 1e-9 {
		t.Errorf("recent processing %+v, want 100 samples, p50 50ms, p99 99ms", r)
	}
}
