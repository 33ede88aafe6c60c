package metrics

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// registered returns a fresh registry holding m's collectors.
func registered(t *testing.T, m *Metrics) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return reg
}

// expectMetrics checks that reg exposes exactly want (Prometheus text
// format) for the named metrics.
func expectMetrics(t *testing.T, reg prometheus.Gatherer, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// value is the value of a single-series collector such as one child of a
// vector.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// countSeries is how many series m exposes under name.
func countSeries(t *testing.T, m *Metrics, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(registered(t, m), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// histogramReading is a histogram's cumulative bucket counts by upper
// bound, its sum and its count.
type histogramReading struct {
	buckets map[float64]uint64
	sum     float64
	count   uint64
}

func readHistogram(t *testing.T, h prometheus.Histogram) histogramReading {
	t.Helper()
	var out dto.Metric
	if err := h.Write(&out); err != nil {
		t.Fatal(err)
	}
	r := histogramReading{buckets: map[float64]uint64{}, sum: out.Histogram.GetSampleSum(), count: out.Histogram.GetSampleCount()}
	for _, b := range out.Histogram.GetBucket() {
		r.buckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	return r
}

// expectHistogram checks h's count, its sum to within a nanosecond's worth
// of rounding, and the cumulative count of each bucket in want.
func expectHistogram(t *testing.T, h prometheus.Histogram, count uint64, sum float64, want map[float64]uint64) {
	t.Helper()
	got := readHistogram(t, h)
	if got.count != count {
		t.Errorf("count = %d, want %d", got.count, count)
	}
	if math.Abs(got.sum-sum) > 1e-9 {
		t.Errorf("sum = %v, want %v", got.sum, sum)
	}
	for le, n := range want {
		if got.buckets[le] != n {
			t.Errorf("bucket le=%v holds %d, want %d", le, got.buckets[le], n)
		}
	}
}
