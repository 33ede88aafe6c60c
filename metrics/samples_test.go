package metrics

import (
	"sync"
	"testing"
)

func TestPercentileIsNearestRank(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1) // 1..100
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"no values", nil, 50, 0},
		{"one value", []float64{7}, 99, 7},
		{"median of four is the second", []float64{1, 2, 3, 4}, 50, 2},
		{"p95 of 1..100", hundred, 95, 95},
		{"p99 of 1..100", hundred, 99, 99},
		{"p0 is the minimum", hundred, 0, 1},
		{"p100 is the maximum", hundred, 100, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

// Once the ring is full, percentiles follow the recent values while the
// totals still cover everything.
func TestSamplesPercentilesFollowTheMostRecentValues(t *testing.T) {
	var s samples
	for range recentSamples {
		s.observe(1000) // an old, slow period
	}
	for range recentSamples {
		s.observe(1) // now fast
	}
	got := s.summary()
	if got.Count != 2*recentSamples || got.Held != recentSamples {
		t.Errorf("count %d, held %d; want %d, %d", got.Count, got.Held, 2*recentSamples, recentSamples)
	}
	if got.Sum != 1001*recentSamples || got.Min != 1 || got.Max != 1000 {
		t.Errorf("sum %v min %v max %v; want %v, 1, 1000", got.Sum, got.Min, got.Max, 1001*recentSamples)
	}
	if got.P50 != 1 || got.P99 != 1 {
		t.Errorf("p50 %v p99 %v after the slow period left the ring; want 1, 1", got.P50, got.P99)
	}

	s.observe(500) // one slow value among 4095 fast ones is past the p99
	if got := s.summary(); got.P99 != 1 || got.Max != 1000 {
		t.Errorf("p99 %v max %v; want 1, 1000", got.P99, got.Max)
	}
}

func TestSamplesEmptySummaryIsZero(t *testing.T) {
	var s samples
	if got := s.summary(); got != (sampleSummary{}) {
		t.Errorf("summary of nothing = %+v, want zeros", got)
	}
}

func TestSamplesConcurrentObserversLoseNothing(t *testing.T) {
	var s samples
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				s.observe(2)
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			_ = s.summary()
		}
	})
	wg.Wait()
	if got := s.summary(); got.Count != 8000 || got.Sum != 16000 {
		t.Errorf("count %d sum %v, want 8000, 16000", got.Count, got.Sum)
	}
}
